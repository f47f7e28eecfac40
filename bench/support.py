"""What the benchmarks share: a fresh PostgreSQL database with Django set up and migrated,
timed page requests, worker processes, one submitted annotation to expand, and gunicorn on
the loopback with sessions that log in through its form."""

import http.client
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
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


def simulator(*, capacity: int, tokens: int, seconds_per_token: float, extra: list | None = None,
              **kwargs) -> tuple[subprocess.Popen, str]:  # fmt: skip
    """``manage.py llm_simulator`` on a free loopback port: (its process, its base URL)."""
    command = [sys.executable, "manage.py", "llm_simulator", "--port", "0", "--quiet"]
    command += ["--capacity", str(capacity), "--target-tokens", str(tokens)]
    command += ["--seconds-per-token", repr(seconds_per_token), *(extra or [])]
    process = spawn(command, stdout=subprocess.PIPE, text=True, **kwargs)
    return process, re.search(r"http://\S+/v1", process.stdout.readline()).group(0)


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


def production_env(database_url: str, var_dir: str, redis_url: str | None = None) -> dict:
    """The environment of a server run as the README deploys it (DEBUG off: no query log),
    on plain HTTP on the loopback, with throttles a load of bench users does not reach."""
    env = {**os.environ, "DATABASE_URL": database_url, "DEBUG": "0", "VAR_DIR": var_dir}
    env.update(SECRET_KEY="bench-server-" + "k" * 40, PSEUDONYM_KEY="bench-server-pseudonyms")
    env.update(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", STATIC_MANIFEST="0")
    env.update(ALLOWED_HOSTS="127.0.0.1", THROTTLE_AUTH="1000/min", THROTTLE_USER="100000/min")
    env.pop("REDIS_URL", None)
    env.pop("DB_POOL_MAX_SIZE", None)  # the settings' default: a sync worker serves one at a time
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def gunicorn_start(env: dict, workers: int, log_path: Path) -> tuple[subprocess.Popen, int]:
    """gunicorn (sync workers, as the README runs it) on a free loopback port, answering;
    (process, port). Stop it with stop()."""
    import gunicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi", "--workers",
               str(workers), "--bind", f"127.0.0.1:{port}"]  # fmt: skip
    if int(gunicorn.__version__.split(".")[0]) >= 24:  # 24+ opens ~/.gunicorn/gunicorn.ctl
        command.append("--no-control-socket")
    log = open(log_path, "w")  # noqa: SIM115 (the server's, closed when it ends)
    server = spawn(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        if server.poll() is not None:
            sys.exit(f"gunicorn ended; see {log_path}")
        try:
            status = HttpSession(port).request("GET", "/accounts/login/")[0]
        except OSError:
            status = None
        if status == 200:
            return server, port
        time.sleep(0.1)
    stop(server)
    sys.exit(f"gunicorn did not answer; see {log_path}")


def workers_cpu_seconds(master: int) -> float:
    """CPU time (user + system) of a gunicorn master's workers so far."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a worker that gunicorn replaced
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class HttpSession:
    """A browser's session in a few lines: one connection (reopened when the server closes
    it, as gunicorn's sync workers do after each answer), its cookies, and the login form."""

    def __init__(self, port: int, timeout: float = 60) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:  # fmt: skip
        sent = {"Host": "127.0.0.1", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.conn.request(method, path, body, sent)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()  # the next request reconnects
            raise
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name.strip()] = value
        return response.status, raw

    def log_in(self, username: str, password: str) -> None:
        """Through the login form, with its CSRF token, as a person does."""
        status, page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise RuntimeError(f"login page: {status}")
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrfmiddlewaretoken": token.group(1).decode()})  # fmt: skip
        status, _ = self.request("POST", "/accounts/login/", form.encode(),
                                 {"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {username}: {status}")

    def put_json(self, path: str, body: dict) -> tuple[int, bytes]:
        """A PUT as the page's script sends it: JSON, the session, the CSRF header."""
        headers = {"Content-Type": "application/json", "X-CSRFToken": self.cookies["csrftoken"]}
        return self.request("PUT", path, json.dumps(body).encode(), headers)
