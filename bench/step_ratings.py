"""Step ratings at scale: the rating save under 20 reviewers at once, and the review page's
rating mode of a 200-step trace with the judge's ratings.

Creates a fresh PostgreSQL database (``--database``, default ``bench_step_ratings``, dropped
first), seeds 1,000 problems with a submitted annotation each and ``--traces`` succeeded
traces (bulk inserts of 5,000), then gives every trace ``--steps`` steps (40: 4 million step
rows at 100,000 traces) with one SQL statement, and the reviewers. ``--redis URL`` puts the
cache (rendered steps, throttles) in that Redis database (flushed first), as a deployment
has it; by default it is files.

Rating save: first the queries of a first save and of a change, listed (counted in this
process through the test client, before any load). Then one reviewer alone for 5 s, back to
back (the save's own cost), then ``--reviewers`` reviewers, each rating steps of its own
traces through ``PUT /api/traces/{id}/steps/{n}/rating/`` (a first rating, then a change
based on the version the answer gave) for ``--duration`` seconds, one save every
``--interval`` seconds on average (1 s: a reviewer pressing a key a second; 0: back to back).
Printed: saves, errors, 409s, wall latency p50/p95/max. Target: p95 < 50 ms.

- ``--server inprocess`` (the default): the reviewers are threads of this process, each with
  its own test Client and pooled connection (``DB_POOL_MAX_SIZE`` raised to reviewers + 2).
  They share one interpreter (the GIL), so the figure includes their contention, which a
  server's worker processes do not share.
- ``--server gunicorn --workers N [M ...]``: gunicorn as the README runs it (sync workers,
  DEBUG off, the settings' pool) on a free loopback port against the same database, once per
  number of workers; each reviewer is a thread with its own HTTP session, logged in through
  the login form (its CSRF token), sending each PUT with the session cookie and the
  ``X-CSRFToken`` header as the page's script does. Also printed: the load average and the
  workers' CPU time per save (from /proc). Each run rates traces no earlier run touched.

Review page: ``GET /review/{id}/?mode=steps`` of a trace of 200 steps (and of 20 steps, to
show the queries do not grow with the steps) with a succeeded judge job and the reviewer's
ratings of half its steps, through the test client in this process (DEBUG on); p50/p95 over
``--reps`` and the queries of each. Target: p95 < 150 ms, the same queries at 20 and 200
steps. Figures are printed, never asserted.

    .venv/bin/python bench/step_ratings.py [--traces 100000] [--steps 40] [--reviewers 20]
        [--duration 20] [--reps 30] [--interval 1.0] [--server inprocess|gunicorn]
        [--workers 2 4] [--redis redis://127.0.0.1:6379/4] [--database NAME]

Measured on this shared 2-core machine while other people's test runs kept its load average
at 3 to 5 (so every latency below includes waiting for a core), at 100,000 traces x 40 steps
(seeded in 170 s), ``--server gunicorn --workers 2 4 --redis``: a first save is 11 queries,
a change 8 (session, user, roles; the step with its trace; the UPDATE ... WHERE version = N;
the row re-read); 2 workers: one reviewer p50 24.3 / p95 46.3 ms, 20 reviewers at 1 save/s
p50 27.7 / p95 92.7 ms, 16-18 ms of worker CPU per save; 4 workers: one reviewer p50 34.7 /
p95 74.1 ms, 20 reviewers p50 53.0 / p95 127.7 ms, 19 ms of CPU per save; no error and no
409 in any run. The save target (p95 < 50 ms) is met by one reviewer with 2 workers, not by
20 at that load. The rating mode: 23 queries at 20 and at 200 steps; p50 72.1 / p95 115.7 ms
at 20 steps, p50 77.7 / p95 120.0 ms at 200 (target met).
"""

import argparse
import json
import os
import random
import statistics
import threading
import time

from support import PG, django_on_fresh_database, p95, timed_get

DB = "bench_step_ratings"


def seed_traces(count: int) -> None:
    from annotator.models import Annotation, Problem
    from expansion.models import LLMEndpoint, Trace
    from expansion.prompts import prompt_active
    from tests.factories import UserFactory

    annotator = UserFactory(username="annotator", role="annotator")
    problems = Problem.objects.bulk_create(
        Problem(source="bench", external_id=f"p{i:05}", statement=f"Solve ${i}x = 1$.")
        for i in range(1000)
    )  # fmt: skip
    annotations = Annotation.objects.bulk_create(
        Annotation(problem=p, annotator=annotator, status="submitted") for p in problems
    )
    prompt, endpoint = (
        prompt_active(),
        LLMEndpoint.objects.create(
            name="bench", base_url="http://127.0.0.1:9/v1", model="bench-model"
        ),
    )
    record = {"steps": [{"kind": "attempt", "text": "Try.", "notes": []}], "final_answer": "1"}
    for start in range(0, count, 5000):
        Trace.objects.bulk_create(
            Trace(annotation=annotations[n % 1000], annotation_version=1, record=record,
                  prompt=prompt, endpoint=endpoint, params={"model": "bench-model"},
                  sample_index=n // 1000, idempotency_key=f"bench-{n:09}", status="succeeded",
                  thought=f"Trace {n}.", solution="\\boxed{1}")
            for n in range(start, min(count, start + 5000))
        )  # fmt: skip


def seed_steps(steps: int) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO curation_tracestep (trace_id, number, start, "end", text) '
            "SELECT t.id, n, (n - 1) * 100, n * 100 - 2, 'Step ' || n || ' of trace ' || t.id "
            "FROM expansion_trace t, generate_series(1, %s) n WHERE t.status = 'succeeded'",
            [steps],
        )
        cursor.execute(
            "INSERT INTO curation_stepsplit (trace_id, thought_hash, steps, unsplittable, "
            "split_at) SELECT id, encode(sha256(convert_to(thought, 'UTF8')), 'hex'), %s, "
            "false, now() FROM expansion_trace WHERE status = 'succeeded'",
            [steps],
        )
        cursor.execute("VACUUM ANALYZE curation_tracestep, curation_stepsplit")
        cursor.execute("SELECT count(*) FROM curation_tracestep")
        return cursor.fetchone()[0]


def reviewers(count: int) -> list:
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    group = Group.objects.get(name="reviewer")
    made = [UserFactory(username=f"rater{i:02}") for i in range(count)]
    for user in made:
        user.groups.add(group)
    return made


def probe_save(user, trace: int) -> None:
    """The queries of a first save and of a change, through the whole middleware stack
    (the test client, in this process), counted before the load."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    body = {"correctness": 1, "faithfulness": "faithful", "version": 0}
    url = f"/api/traces/{trace}/steps/1/rating/"
    client.put(url, body, content_type="application/json")  # fills per-process caches
    for what, number, version in (("first save", 2, 0), ("change", 2, 1)):
        with CaptureQueriesContext(connection) as queries:
            answer = client.put(url.replace("/1/", f"/{number}/"), {**body, "version": version},
                                content_type="application/json")  # fmt: skip
        assert answer.status_code == 200, answer.content
        print(f"queries of one {what}: {len(queries.captured_queries)}")
        for query in queries.captured_queries:
            print(f"  {query['sql'][:110]}")


def rate_steps(put, index: int, own: list[int], steps: int, stop_at: float, interval: float,
               out: dict) -> None:  # fmt: skip
    """One reviewer rating steps of its own traces until ``stop_at``: a first rating, then
    changes based on the version each answer gave. ``put(trace, number, payload)`` sends a
    save and answers (status, body as a dict)."""
    rng = random.Random(index)  # noqa: S311
    versions: dict[tuple[int, int], int] = {}
    time.sleep(rng.uniform(0, interval))  # the reviewers do not all press at once
    while time.monotonic() < stop_at:
        trace, number = rng.choice(own), rng.randint(1, steps)
        payload = {"correctness": rng.choice([-1, 0, 1]),
                   "faithfulness": rng.choice(["faithful", "invented", ""]),
                   "version": versions.get((trace, number), 0)}  # fmt: skip
        started = time.perf_counter()
        try:
            status, body = put(trace, number, payload)
        except OSError as exc:
            status, body = repr(exc), {}
        elapsed = (time.perf_counter() - started) * 1e3
        if status == 200:
            out["times"].append(elapsed)
            versions[trace, number] = body["version"]
        elif status == 409:
            out["conflicts"] += 1
        else:
            out["errors"].append(status)
        if interval:  # a person's pace: the next key press, jittered
            time.sleep(rng.uniform(0.5, 1.5) * interval)


def report(outs: list[dict], duration: float, interval: float, extra: str = "") -> None:
    times = [t for out in outs for t in out["times"]]
    errors = [e for out in outs for e in out["errors"]]
    pace = f" (one save per {interval:g} s each)" if interval else " (back to back)"
    kinds = f" {sorted(set(map(str, errors)))[:5]}" if errors else ""
    conflicts = sum(out["conflicts"] for out in outs)
    print(
        f"saves {len(times)} in {duration:.0f} s by {len(outs)} reviewers{pace}, errors "
        f"{len(errors)}{kinds}, 409s {conflicts}; latency p50 {statistics.median(times):.1f}"
        f" ms, p95 {p95(times):.1f} ms, max {max(times):.1f} ms{extra} (target p95 < 50 ms)"
    )


def own_traces(traces: list[int], index: int, count: int) -> list[int]:
    return traces[index::count]  # one rater per trace: each reviewer its own


def save_load(users, traces: list[int], steps: int, duration: float,
              interval: float = 0.0) -> None:  # fmt: skip
    """The reviewers as threads of this process, each with its own test Client."""
    from django.db import connection
    from django.test import Client

    outs = [{"times": [], "errors": [], "conflicts": 0} for _ in users]
    stop_at = time.monotonic() + duration

    def reviewer(index: int) -> None:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(users[index])
        connection.close()  # give force_login's connection back: a request takes its own

        def put(trace, number, payload):
            answer = client.put(f"/api/traces/{trace}/steps/{number}/rating/", payload,
                                content_type="application/json")  # fmt: skip
            return answer.status_code, answer.json() if answer.status_code == 200 else {}

        try:
            rate_steps(put, index, own_traces(traces, index, len(users)), steps, stop_at,
                       interval, outs[index])  # fmt: skip
        finally:
            connection.close()

    threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report(outs, duration, interval)


def save_load_http(port: int, server_pid: int, usernames: list[str], traces: list[int],
                   steps: int, duration: float, interval: float = 0.0) -> None:  # fmt: skip
    """The reviewers as threads each with its own HTTP session (logged in through the login
    form, the CSRF header on each PUT) against gunicorn; its workers' CPU per save."""
    from support import HttpSession, workers_cpu_seconds

    from tests.factories import PASSWORD

    sessions = [HttpSession(port) for _ in usernames]
    logins = [threading.Thread(target=s.log_in, args=(name, PASSWORD))
              for s, name in zip(sessions, usernames, strict=True)]  # fmt: skip
    for thread in logins:
        thread.start()
    for thread in logins:
        thread.join()
    for session in sessions:
        session.conn.timeout = 10  # the saves get a short one
    outs = [{"times": [], "errors": [], "conflicts": 0} for _ in usernames]
    cpu, stop_at = workers_cpu_seconds(server_pid), time.monotonic() + duration

    def reviewer(index: int) -> None:
        def put(trace, number, payload):
            status, raw = sessions[index].put_json(
                f"/api/traces/{trace}/steps/{number}/rating/", payload
            )
            return status, json.loads(raw) if status == 200 else {}

        rate_steps(put, index, own_traces(traces, index, len(usernames)), steps, stop_at,
                   interval, outs[index])  # fmt: skip

    threads = [threading.Thread(target=reviewer, args=(i,)) for i in range(len(usernames))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    saves = sum(len(out["times"]) + len(out["errors"]) + out["conflicts"] for out in outs)
    spent = (workers_cpu_seconds(server_pid) - cpu) / max(saves, 1) * 1e3
    report(outs, duration, interval, f"; server CPU {spent:.1f} ms per save")


def page_load(reviewer, reps: int) -> None:
    from django.test import Client

    from curation.judging.prompts import judge_prompt_active
    from curation.models import JudgeJob, StepRating, TraceStep
    from curation.ratings.steps import trace_steps_split
    from expansion.models import LLMEndpoint
    from tests.factories import TraceFactory

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(reviewer)
    endpoint = LLMEndpoint.objects.first()
    for size in (20, 200):
        thought = "\n\n".join(f"Wait, step {n}: $x_{n} = {n} + 1$, so let me check it."
                              for n in range(1, size + 1))  # fmt: skip
        trace = TraceFactory(thought=thought, endpoint=endpoint)
        trace_steps_split(trace_id=trace.pk)
        steps = list(TraceStep.objects.filter(trace=trace).order_by("number"))
        JudgeJob.objects.create(
            trace=trace, prompt=judge_prompt_active(), endpoint=endpoint, params={},
            step_ids=[s.pk for s in steps], thought_hash="", idempotency_key=f"bench-{size}",
            status="succeeded",
            ratings=[{"step": s.number, "correctness": 1, "faithfulness": "faithful",
                      "reason": "Follows from the previous step."} for s in steps],
        )  # fmt: skip
        StepRating.objects.bulk_create(StepRating(step=s, rater=reviewer, correctness=1)
                                       for s in steps[::2])  # fmt: skip
        times, counts = [], set()
        for i in range(reps + 3):
            elapsed, queries, _ = timed_get(client, f"/review/{trace.pk}/", {"mode": "steps"})
            if i >= 3:
                times.append(elapsed)
                counts.add(len(queries))
        print(
            f"review page, {size} steps with judge ratings: p50 {statistics.median(times):.1f}"
            f" ms, p95 {p95(times):.1f} ms, queries {sorted(counts)} (target p95 < 150 ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one reviewer's saves (0: back to back)")  # fmt: skip
    parser.add_argument("--server", choices=["inprocess", "gunicorn"], default="inprocess",
                        help="saves through the test client in this process, or over HTTP to "
                        "gunicorn on the loopback")  # fmt: skip
    parser.add_argument("--workers", type=int, nargs="+", default=[4],
                        help="gunicorn's worker processes (several: one run each)")  # fmt: skip
    parser.add_argument("--redis", metavar="URL",
                        help="the cache (rendered steps, throttles) in this Redis database "
                        "(flushed), as a deployment has it; default: files")  # fmt: skip
    parser.add_argument("--database", default=DB, help="PostgreSQL database (dropped first)")
    args = parser.parse_args()
    if args.server == "inprocess":
        # The reviewers stand for requests served at once: one pooled connection each, as a
        # server's processes would have between them (the default pool of 4 would queue them).
        os.environ.setdefault("DB_POOL_MAX_SIZE", str(args.reviewers + 2))
        print(f"DB_POOL_MAX_SIZE {os.environ['DB_POOL_MAX_SIZE']}")
    if args.redis:
        import redis

        redis.Redis.from_url(args.redis).flushdb()
        os.environ["REDIS_URL"] = args.redis
    else:
        os.environ.pop("REDIS_URL", None)
    django_on_fresh_database(args.database, var_prefix="bench-steps-")
    started = time.monotonic()
    seed_traces(args.traces)
    rows = seed_steps(args.steps)
    print(f"seeded {args.traces:,} traces and {rows:,} steps in {time.monotonic() - started:.0f} s")
    from expansion.models import Trace
    from tests.factories import UserFactory

    traces = list(Trace.objects.filter(status="succeeded").values_list("pk", flat=True))
    users = reviewers(args.reviewers)
    # One reviewer alone first: the save's own cost, without the others' contention, on
    # traces of its own (the others' traces must keep a free place for their rater).
    alone = UserFactory(username="rater-alone", role="reviewer")
    probe_save(alone, traces[-1])
    mine, theirs = traces[len(traces) // 2 : -1], traces[: len(traces) // 2]
    if args.server == "inprocess":
        save_load([alone], mine, args.steps, min(5.0, args.duration))
        save_load(users, theirs, args.steps, args.duration, interval=args.interval)
    else:
        serve_load(args, [alone.username], [u.username for u in users], mine, theirs)
    page_load(users[0], args.reps)


def serve_load(args, alone: list[str], usernames: list[str], mine, theirs) -> None:
    """The saves over HTTP against gunicorn with each number of workers in turn; each run
    on traces none of the earlier runs rated (a reviewer rates a trace only once it has no
    other rater), so that the first saves of every run are first ratings too."""
    import tempfile
    from pathlib import Path

    from support import gunicorn_start, production_env, stop

    var_dir = tempfile.mkdtemp(prefix="bench-steps-server-")
    env = production_env(PG + args.database, var_dir, args.redis)
    runs = len(args.workers)
    for run, workers in enumerate(args.workers):
        log = Path(var_dir) / f"gunicorn-{workers}.log"
        server, port = gunicorn_start(env, workers, log)
        try:
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"gunicorn, {workers} sync workers, DEBUG off, cache "
                  f"{'Redis' if args.redis else 'files'}; load average {load}")  # fmt: skip
            save_load_http(port, server.pid, alone, mine[run::runs], args.steps,
                           min(5.0, args.duration))  # fmt: skip
            save_load_http(port, server.pid, usernames, theirs[run::runs], args.steps,
                           args.duration, args.interval)  # fmt: skip
        finally:
            stop(server)
        print(f"  load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
