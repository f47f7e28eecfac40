"""What the benchmarks share: a fresh PostgreSQL database with Django set up and migrated,
timed page requests, worker processes, and one submitted annotation to expand."""

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432/"


def fresh_database(name: str) -> str:
    """Drop database ``name`` if it exists, create it empty; its URL."""
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    return PG + name


def django_on_fresh_database(name: str, *, var_prefix: str) -> None:
    """Django (development settings, a VAR_DIR of its own) on a fresh, migrated ``name``."""
    os.environ.update(DATABASE_URL=fresh_database(name), DEBUG="1",
                      DJANGO_SETTINGS_MODULE="config.settings",
                      VAR_DIR=tempfile.mkdtemp(prefix=var_prefix))  # fmt: skip
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed_get(client, path: str, params: dict) -> tuple[float, list[dict], object]:
    """One GET through the test client: milliseconds, the queries it ran, the response.
    Anything but a 200 ends the benchmark with what the page said."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = client.get(path, params)
        elapsed = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"{path} {params}: {response.status_code} {response.content[:300]!r}")
    return elapsed * 1e3, list(queries.captured_queries), response


def p95(times: list[float]) -> float:
    """The 95th percentile of measured times (nearest rank)."""
    ranked = sorted(times)
    return ranked[min(len(ranked) - 1, math.ceil(0.95 * len(ranked)) - 1)]


# The record the expansion benchmarks submit: an attempt, its reflection and a correction.
STEPS = [
    {"kind": "attempt", "text": "Guess x equals three since three plus three", "notes": ["2x"]},
    {"kind": "reflection", "text": "Three plus three gives six, not eight", "notes": []},
    {"kind": "correction", "text": "Choose four: four plus four equals eight", "notes": []},
]


def spawn(command: list, *, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """A subprocess in its own session, so that stop() can end its whole process group;
    ``env`` adds to (or overrides) this process's environment."""
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})},
                            start_new_session=True, **kwargs)  # fmt: skip


def stop(process: subprocess.Popen | None, sig=signal.SIGTERM, wait: float = 20) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def submitted_annotation(*, base_url: str, capacity: int, timeout_seconds: int):
    """Migrate, then one annotator's submitted annotation of STEPS and a simulated endpoint
    at ``base_url``: (annotation, endpoint). Django must be set up."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command

    from annotator import services as annotator
    from annotator.models import Problem
    from annotator.roles import Role
    from expansion.models import LLMEndpoint

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench-annotator")
    user.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR)[0])
    Problem.objects.create(
        source="bench", external_id="p1", statement="Find $x$ with $x+x=8$.", reference_answer="4"
    )
    draft = annotator.annotation_claim(annotator=user)
    annotator.annotation_save(
        annotation_id=draft.pk, user=user, base_version=1, steps=STEPS, final_answer="4"
    )
    submitted = annotator.annotation_submit(annotation_id=draft.pk, user=user)
    endpoint = LLMEndpoint.objects.create(
        name="bench", base_url=base_url, model="simulated-journey", is_simulated=True,
        max_in_flight=capacity, max_tokens=8192, timeout_seconds=timeout_seconds,
    )  # fmt: skip
    return submitted, endpoint
