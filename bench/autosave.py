"""Autosave under load: N annotators saving their drafts every second.

Creates a fresh PostgreSQL database (``bench_autosave``, dropped first), migrates it, imports
MATH-500 and creates the annotators, then starts gunicorn (4 sync workers, production
settings with DEBUG off, a file cache or ``--redis URL``) on a free loopback port. Each
annotator is a thread with its own HTTP connection: all get a token, then all claim a problem,
then each PATCHes ``/api/annotations/{id}/`` every ``--interval`` seconds for ``--duration``
seconds (first saves staggered over one interval), each save adding a step so that every save
creates a revision (past 200 steps, changing the last one).

Printed: the queries of one save (API and the editor's htmx autosave, counted in-process
before the load), the load average, saves, errors (non-200 or no answer), client-side wall
latency p50/p95/p99/max of the saves (and of the claims), and lost revisions: for each
annotation the revision versions in the database must be exactly 2..version, and their count
must equal the saves the client saw succeed. Target: p95 < 50 ms, no errors, no lost
revision. Figures are printed, never asserted.

    .venv/bin/python bench/autosave.py [--annotators 20] [--interval 1] [--duration 60]
        [--workers 4] [--redis redis://127.0.0.1:6379/15]
"""

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import gunicorn
import psycopg
from support import workers_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
PG, DB = "postgres://postgres@127.0.0.1:5432/", "bench_autosave"
PASSWORD = "bench-autosave-Pw-7731"  # noqa: S105 (throwaway bench users)
KINDS = ["attempt", "reflection", "correction", "verification"]
USERS = """from django.core.management import call_command
for i in range({n}):
    call_command("create_user", f"bench{{i:02}}", role="annotator", password="{pw}")"""
# Queries of one save, counted in-process with the test client through the whole middleware
# stack (API with a token, then the editor's htmx autosave with a session), before the load,
# so that nothing in the server pays for counting them.
PROBE = """import json
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from annotator.services import annotation_claim
from annotator.tokens import api_token_issue
call_command("create_user", "bench-probe", role="annotator", password="{pw}")
user = get_user_model().objects.get(username="bench-probe")
annotation, token = annotation_claim(annotator=user), api_token_issue(user=user)
client, version, out = Client(HTTP_HOST="127.0.0.1"), annotation.version, {{}}
auth = {{"content_type": "application/json", "HTTP_AUTHORIZATION": f"Token {{token}}"}}
for n in range(3):  # the last one is counted (the first ones fill per-process caches)
    body = {{"version": version, "steps": [{{"kind": "attempt", "text": str(n)}}]}}
    with CaptureQueriesContext(connection) as queries:
        answer = client.patch(f"/api/annotations/{{annotation.pk}}/", body, **auth)
    version = answer.json()["version"]
out["api"] = [q["sql"][:60] for q in queries.captured_queries]
client.force_login(user)
form = {{"version": version, "kind": "attempt", "text": "htmx", "notes": "", "final_answer": ""}}
client.post(f"/annotations/{{annotation.pk}}/save/", form, HTTP_HX_REQUEST="true")
form.update(version=version + 1, text="htmx again")
with CaptureQueriesContext(connection) as queries:
    client.post(f"/annotations/{{annotation.pk}}/save/", form, HTTP_HX_REQUEST="true")
out["htmx"] = [q["sql"][:60] for q in queries.captured_queries]
print("PROBE " + json.dumps(out))"""


def request(conn, method, path, body=None, token=None):
    """(status or None, body bytes or the exception, seconds)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Token {token}"
    started = time.perf_counter()
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        response = conn.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()  # the next request reconnects
        return None, repr(exc).encode(), time.perf_counter() - started
    return response.status, raw, time.perf_counter() - started


def annotator(index, port, args, barrier, clock, out):
    """Token, claim, then autosave until the deadline; record what happened in ``out``."""
    # Twenty password hashes at once take seconds on a loaded machine: the phases before the
    # saves, which are not measured, get a long timeout, the saves a short one.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    out.update(latencies=[], errors=[], saves=0, annotation=None, version=None, token=None)

    def step(what, method, path, body, expect):
        status, raw, seconds = request(conn, method, path, body, out["token"])
        if status != expect:
            out["errors"].append(f"{what}: {status} {raw[:200]!r}")
        try:  # the phases (tokens, claims, saves) start together for everyone
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            out["errors"].append(f"{what}: the others never got there")
        return json.loads(raw) if status == expect else None, seconds

    login = {"username": f"bench{index:02}", "password": PASSWORD}
    answer, _ = step("token", "POST", "/api/auth/token/", login, 200)
    out["token"] = answer and answer["token"]
    answer, out["claim"] = step("claim", "POST", "/api/annotations/claim/", {}, 201)
    if not answer or "deadline" not in clock:
        return
    out["annotation"], out["version"] = answer["id"], answer["version"]
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    steps, path = [], f"/api/annotations/{answer['id']}/"
    next_at = time.monotonic() + args.interval * index / args.annotators
    while next_at < clock["deadline"]:
        time.sleep(max(0.0, next_at - time.monotonic()))
        n = len(out["latencies"])
        del steps[199:]  # the server allows 200 steps; past that, keep changing the last one
        steps.append({"kind": KINDS[n % 4], "text": f"Save {n}: x = {n}? " * 8, "notes": [str(n)]})
        body = {"version": out["version"], "steps": steps, "final_answer": str(n)}
        status, raw, seconds = request(conn, "PATCH", path, body, out["token"])
        out["latencies"].append(seconds)
        if status == 200:
            out["saves"] += 1
            out["version"] = json.loads(raw)["version"]
        else:
            out["errors"].append(f"save {n}: {status} {raw[:200]!r} after {seconds * 1e3:.0f} ms")
            if status == 409:  # carry on from the server's version
                out["version"] = json.loads(raw).get("current", {}).get("version", out["version"])
        next_at = max(next_at + args.interval, time.monotonic())
    conn.close()


def lost_revisions(results):
    """Gaps in 2..version, plus saves the client saw succeed that left no revision."""
    lost, notes = 0, []
    with psycopg.connect(PG + DB) as db:
        for out in (out for out in results if out.get("annotation")):
            pk = out["annotation"]
            sql = "SELECT version FROM annotator_annotation WHERE id = %s"
            (version,) = db.execute(sql, (pk,)).fetchone()
            sql = "SELECT version FROM annotator_annotationrevision WHERE annotation_id = %s"
            got = {v for (v,) in db.execute(sql, (pk,))}
            missing = sorted(set(range(2, version + 1)) - got)
            lost += max(len(missing), out["saves"] - len(got), 0)
            if missing or len(got) != out["saves"] or version != out["version"]:
                notes.append(
                    f"annotation {pk}: version {version}, {len(got)} revisions (missing "
                    f"{missing}); client: {out['saves']} saves, version {out['version']}"
                )
    return lost, notes


def percentiles(ms):
    if len(ms) < 2:
        return "n/a", float("inf")
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {q[49]:.1f}  p95 {q[94]:.1f}  p99 {q[98]:.1f}  max {max(ms):.1f}", q[94]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between saves")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of autosaving")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--redis", metavar="URL", help="cache (throttles) in this Redis database")
    args = parser.parse_args()

    var_dir = tempfile.mkdtemp(prefix="bench-autosave-")
    # Production settings (DEBUG off: no query log), plain HTTP on the loopback.
    env = {**os.environ, "DATABASE_URL": PG + DB, "DEBUG": "0", "VAR_DIR": var_dir}
    env.update(SECRET_KEY="bench-autosave-" + "k" * 40, PSEUDONYM_KEY="bench-autosave-pseudonyms")
    env.update(SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", STATIC_MANIFEST="0")
    env.update(ALLOWED_HOSTS="127.0.0.1")
    env.update(THROTTLE_AUTH="1000/min", THROTTLE_USER="100000/min")
    env.pop("REDIS_URL", None)
    if args.redis:
        env["REDIS_URL"] = args.redis
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    for command in (
        ["migrate"],
        ["import_problems", "data/math500.jsonl", "--source", "math500"],
        ["shell", "-c", USERS.format(n=args.annotators, pw=PASSWORD)],
    ):
        manage = [sys.executable, "manage.py", *command]
        subprocess.run(manage, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    probe = [sys.executable, "manage.py", "shell", "-c", PROBE.format(pw=PASSWORD)]
    printed = subprocess.run(probe, cwd=ROOT, env=env, capture_output=True, text=True)
    if printed.returncode:
        sys.exit(f"counting the queries of a save failed:\n{printed.stderr[-3000:]}")
    queries = json.loads(printed.stdout.split("PROBE ", 1)[1])

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve = [
        Path(sys.executable).parent / "gunicorn",
        "config.wsgi",
        "--workers",
        str(args.workers),
    ]
    serve += ["--bind", f"127.0.0.1:{port}", "--access-logfile", "-"]
    serve += ["--access-logformat", '%(t)s "%(r)s" %(s)s %(b)s %(D)sus pid %(p)s']
    if int(gunicorn.__version__.split(".")[0]) >= 24:  # 24+ opens ~/.gunicorn/gunicorn.ctl
        serve.append("--no-control-socket")
    log = open(Path(var_dir) / "gunicorn.log", "w")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(serve, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    results = [{} for _ in range(args.annotators)]
    try:
        for _ in range(300):
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            status = request(probe, "GET", "/api/")[0]
            probe.close()
            if status is not None or server.poll() is not None:
                break
            time.sleep(0.1)
        if status is None:
            sys.exit(f"the server did not start; see {log.name}")
        print(
            f"gunicorn {gunicorn.__version__} on 127.0.0.1:{port}, {args.workers} workers; "
            f"{args.annotators} annotators saving every {args.interval:g} s for {args.duration:g} s"
            f"; cache: {'Redis' if args.redis else 'files'}"
        )
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        clock = {}

        def start_saving():  # the last phase begins: the deadline and the CPU clock
            clock.update(deadline=time.monotonic() + args.duration)
            clock.update(cpu=workers_cpu_seconds(server.pid))

        barrier = threading.Barrier(args.annotators, start_saving)
        threads = [
            threading.Thread(target=annotator, args=(i, port, args, barrier, clock, results[i]))
            for i in range(args.annotators)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + 300)
        cpu = workers_cpu_seconds(server.pid) - clock.get("cpu", 0)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for path, sql in queries.items():
        print(f"queries per save ({path}): {len(sql)}")
        print("".join(f"  {statement}\n" for statement in sql), end="")
    saves = [s * 1e3 for out in results for s in out.get("latencies", [])]
    errors = [error for out in results for error in out.get("errors", [])]
    lost, notes = lost_revisions(results)
    figures, p95 = percentiles(saves)
    print(f"saves: {len(saves)} sent, {sum(out.get('saves', 0) for out in results)} ok")
    print(f"save latency ms: {figures}")
    print(f"server CPU per save (gunicorn workers): {cpu / max(len(saves), 1) * 1e3:.1f} ms")
    print(
        f"claim latency ms: {percentiles([o['claim'] * 1e3 for o in results if 'claim' in o])[0]}"
    )
    print(f"errors: {len(errors)}")
    print("".join(f"  {error}\n" for error in errors[:20]), end="")
    print(f"lost revisions: {lost}")
    print("".join(f"  {note}\n" for note in notes), end="")
    met = p95 < 50 and not errors and not lost
    print(f"target (p95 < 50 ms, no errors, no lost revision): {'met' if met else 'NOT met'}")
    print(f"server log (with access log): {log.name}")


if __name__ == "__main__":
    main()
