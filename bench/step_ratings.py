"""Step ratings at scale: the rating save under 20 reviewers at once, and the review page's
rating mode of a 200-step trace with the judge's ratings.

Creates a fresh PostgreSQL database (``bench_step_ratings``, dropped first), seeds 1,000
problems with a submitted annotation each and ``--traces`` succeeded traces (bulk inserts of
5,000), then gives every trace ``--steps`` steps (40: 4 million step rows at 100,000 traces)
with one SQL statement, and the reviewers.

Rating save: one reviewer alone for 5 s, back to back (the save's own cost), then
``--reviewers`` threads, each with its own test Client (logged in) and pooled database
connection, each rating steps of its own traces through
``PUT /api/traces/{id}/steps/{n}/rating/`` (a first rating, then a change based on its
version) for ``--duration`` seconds, one save every ``--interval`` seconds on average (1 s:
a reviewer pressing a key a second; 0: back to back, which measures the GIL's queue, not a
save). Printed: the
queries of a first save (counted before the load), saves, errors, 409s, and wall latency
p50/p95/max. Target: p95 < 50 ms. The threads share one Python process (the GIL), so the
figure includes their contention, which a server's worker processes would not share.

Review page: ``GET /review/{id}/?mode=steps`` of a trace of 200 steps (and of 20 steps, to
show the queries do not grow with the steps) with a succeeded judge job and the reviewer's
ratings of half its steps; p50/p95 over ``--reps`` and the queries of each. Target: p95 <
150 ms, the same queries at 20 and 200 steps. Figures are printed, never asserted.

    .venv/bin/python bench/step_ratings.py [--traces 100000] [--steps 40] [--reviewers 20]
        [--duration 20] [--reps 30] [--interval 1.0]
"""

import argparse
import os
import random
import statistics
import threading
import time

from support import django_on_fresh_database, p95, timed_get

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


def save_load(users, traces: list[int], steps: int, duration: float, probe: bool = True,
              interval: float = 0.0) -> None:  # fmt: skip
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    if probe:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(users[0])
        body = {"correctness": 1, "faithfulness": "faithful", "version": 0}
        url = f"/api/traces/{traces[0]}/steps/1/rating/"
        client.put(url, body, content_type="application/json")
        with CaptureQueriesContext(connection) as queries:
            client.put(url.replace("/1/", "/2/"), body, content_type="application/json")
        print(f"queries of one first save: {len(queries.captured_queries)}")

    times, errors, conflicts, lock = [], [], [0], threading.Lock()
    stop_at = time.monotonic() + duration

    def rate(index: int) -> None:
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(users[index])
        connection.close()  # give force_login's connection back: a request takes its own
        rng = random.Random(index)  # noqa: S311
        own = traces[index + 1 :: len(users)]  # one rater per trace: each reviewer its own
        versions: dict[tuple[int, int], int] = {}
        try:
            while time.monotonic() < stop_at:
                trace, number = rng.choice(own), rng.randint(1, steps)
                version = versions.get((trace, number), 0)
                payload = {"correctness": rng.choice([-1, 0, 1]), "version": version,
                           "faithfulness": rng.choice(["faithful", "invented", ""])}  # fmt: skip
                started = time.perf_counter()
                answer = client.put(f"/api/traces/{trace}/steps/{number}/rating/", payload,
                                    content_type="application/json")  # fmt: skip
                elapsed = (time.perf_counter() - started) * 1e3
                if interval:  # a person's pace: the next key press, jittered
                    time.sleep(rng.uniform(0.5, 1.5) * interval)
                with lock:
                    if answer.status_code == 200:
                        times.append(elapsed)
                        versions[trace, number] = answer.json()["version"]
                    elif answer.status_code == 409:
                        conflicts[0] += 1
                    else:
                        errors.append(answer.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate, args=(i,)) for i in range(len(users))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pace = f" (one save per {interval:g} s each)" if interval else " (back to back)"
    print(f"saves {len(times)} in {duration:.0f} s by {len(users)} reviewers{pace}, errors "
          f"{len(errors)}, 409s {conflicts[0]}; latency p50 {statistics.median(times):.1f} ms, "
          f"p95 {p95(times):.1f} ms, max {max(times):.1f} ms (target p95 < 50 ms)")  # fmt: skip


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
    parser.add_argument("--database", default=DB, help="the PostgreSQL database (dropped first)")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between one reviewer's saves (0: back to back)")  # fmt: skip
    args = parser.parse_args()
    # The reviewers stand for requests served at once: one pooled connection each, as a
    # server's processes would have between them (the default pool of 4 would queue them).
    os.environ.setdefault("DB_POOL_MAX_SIZE", str(args.reviewers + 2))
    print(f"DB_POOL_MAX_SIZE {os.environ['DB_POOL_MAX_SIZE']}")
    django_on_fresh_database(args.database, var_prefix="bench-steps-")
    started = time.monotonic()
    seed_traces(args.traces)
    rows = seed_steps(args.steps)
    print(f"seeded {args.traces:,} traces and {rows:,} steps in {time.monotonic() - started:.0f} s")
    from expansion.models import Trace

    traces = list(Trace.objects.filter(status="succeeded").values_list("pk", flat=True))
    users = reviewers(args.reviewers)
    from tests.factories import UserFactory

    # One reviewer alone first: the save's own cost, without the threads' contention, on
    # traces of its own (the others' traces must keep a free place for their rater).
    alone = UserFactory(username="rater-alone", role="reviewer")
    save_load([alone], traces[len(traces) // 2 :], args.steps, min(5.0, args.duration),
              probe=False)  # fmt: skip
    save_load(users, traces[: len(traces) // 2], args.steps, args.duration,
              interval=args.interval)  # fmt: skip
    page_load(users[0], args.reps)


if __name__ == "__main__":
    main()
