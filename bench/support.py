"""What the benchmarks share: a fresh PostgreSQL database with Django set up and migrated,
and timed page requests."""

import math
import os
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
