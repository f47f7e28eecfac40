"""Review queue at scale: server time and queries per page at 1,000 and 100,000 traces.

Creates a fresh PostgreSQL database (``bench_review``, dropped first), migrates it and seeds
50 annotators, 1 reviewer, 5,000 problems (7 subjects, levels 1-5), 2 submitted annotations
per problem, the active prompt version and 2 endpoints. Traces are added with COPY up to each
of ``--sizes`` in turn: 90 % succeeded (else failed or queued), a 3-6 KB thought (40 % say
"Wait"), content, request and response filled as the engine fills them, checks JSON matching
random flag_* columns (10-20 % each), created_at spread over a year; 30 % get a review row
(pending, approved or rejected). ``VACUUM ANALYZE`` follows each phase.

At each size the page ``/review/`` and the API ``GET /api/review-queue/`` are requested
in-process with Django's test Client, logged in as the reviewer, without and with each filter:
3 warm-ups, then one request with the cache cleared (``miss``: it counts the queue), then
``--reps`` requests (fewer, at least 5, past ``--budget`` seconds) that reuse its counts
(kept ``COUNTS_SECONDS``). Printed: the wall time of ``client.get`` (middleware, queries,
rendering) of the miss and p50/p95 of the reps, their median summed SQL time and the most
queries a request made, the miss included (``CaptureQueriesContext``: session, user and roles
included). Targets: p95 < 100 ms, a miss < 100 ms, at most 10 queries, the same count at
every size (a change is flagged). Then EXPLAIN (ANALYZE, BUFFERS) of the slowest query of the
``--explain`` slowest cases at the largest size, the miss's queries included. Figures are
printed, never asserted.

    .venv/bin/python bench/review_queue.py [--sizes 1000,100000] [--reps 30] [--explain 1]
"""

import argparse
import json
import math
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from support import django_on_fresh_database, p95, timed_get

DB = "bench_review"
SUBJECTS = ["Algebra", "Intermediate Algebra", "Prealgebra", "Geometry", "Number Theory",
            "Counting & Probability", "Precalculus"]  # fmt: skip
PLAIN = """Let me write down what we know: {a}x + {b} = {c}.
Subtracting {b} from both sides gives {a}x = {d}, so x should be {d}/{a}.
So far we have x = {e}; next, let me check it against the original equation.
Hmm, what if I try x = {a} instead? Alternatively, factor it as (x - {a})(x + {b}).
Let me verify the arithmetic once more: {a} + {b} = {g}, and {g} - {b} = {a}.
By the Pythagorean theorem the hypotenuse squared is {a}^2 + {b}^2 = {i}.
Let me take stock: the equation is linear, so there is exactly one solution.""".splitlines()
WAIT = """Wait, that can't be right: {a} + {a} is {j}, not {k}.
Wait. I dropped a factor of {a} in the last step, so let me redo it.""".splitlines()
COLUMNS = ("annotation_id, annotation_version, record, prompt_id, endpoint_id, params, "
           "sample_index, idempotency_key, is_simulated, status, attempts, error_kind, "
           "error_message, run_id, progress_tokens, request, response, content, reasoning, "
           "thought, solution, finish_reason, model_reported, prompt_tokens, "
           "completion_tokens, cost, latency_ms, checks, flag_answer_mismatch, "
           "flag_low_coverage, flag_too_short, flag_leakage, flag_truncated, sends, "
           "usage_estimated, usage_source, created_at, started_at, finished_at")  # fmt: skip


def thought_text(rng: random.Random, wait: bool) -> str:
    paragraphs, size = [], rng.randint(3000, 6000)
    while size > 0:
        lines = []
        for _ in range(rng.randint(3, 5)):
            a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(100, 9999)
            pool = WAIT if wait and rng.random() < 0.08 else PLAIN
            lines.append(rng.choice(pool).format(
                a=a, b=b, c=c, d=c - b, e=(c - b) / a, g=a + b, i=a * a + b * b, j=2 * a,
                k=2 * a + 1))  # fmt: skip
        paragraphs.append(" ".join(lines))
        size -= len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)


def seed_base(rng: random.Random) -> dict:
    """Users, problems, annotations, prompt, endpoints; the ids the cases and traces need."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.contrib.auth.models import Group

    from annotator.models import Annotation, Problem
    from annotator.roles import Role
    from expansion.models import LLMEndpoint
    from expansion.prompts import build_messages, prompt_active

    user_model, unusable = get_user_model(), UNUSABLE_PASSWORD_PREFIX
    names = [f"annotator{i:02}" for i in range(50)] + ["reviewer"]
    users = user_model.objects.bulk_create(user_model(username=n, password=unusable) for n in names)
    for user in users:
        role = Role.REVIEWER if user is users[-1] else Role.ANNOTATOR
        user.groups.add(Group.objects.get(name=role))
    problems = Problem.objects.bulk_create(
        Problem(source="bench", external_id=f"p{i:05}", statement=f"Solve ${i}x + 1 = 0$.",
                reference_answer="4", subject=rng.choice(SUBJECTS), level=rng.randint(1, 5))
        for i in range(5000))  # fmt: skip
    steps = [{"kind": k, "text": f"{k} text", "notes": []} for k in ("attempt", "correction")]
    annotations = Annotation.objects.bulk_create(
        Annotation(problem=p, annotator=annotator, status="submitted", steps=steps,
                   final_answer="4", submitted_at=datetime.now(UTC))
        for p in problems for annotator in rng.sample(users[:-1], 2))  # fmt: skip
    prompt = prompt_active()
    endpoints = [LLMEndpoint.objects.create(name=f"bench-{i}", base_url="http://127.0.0.1:9/v1",
                                            model=f"model-{i}") for i in range(2)]  # fmt: skip
    record = {"steps": steps, "final_answer": "4"}
    messages = build_messages(prompt, problem_statement="Solve $x + 1 = 0$.", record=record)
    return {"reviewer": users[-1], "annotator": users[0].pk, "prompt": prompt.pk,
            "endpoints": [e.pk for e in endpoints], "record": json.dumps(record),
            "annotations": [a.pk for a in annotations], "messages": messages}  # fmt: skip


def seed_traces(base: dict, rng: random.Random, start: int, count: int) -> None:
    from django.db import connection

    now = datetime.now(UTC)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY expansion_trace ({COLUMNS}) FROM STDIN") as copy:
            for n in range(start, start + count):
                status = rng.choices(["succeeded", "failed", "queued"], [90, 5, 5])[0]
                flags = [rng.random() < p for p in (0.15, 0.2, 0.12, 0.1, 0.1)]
                thought = thought_text(rng, wait=rng.random() < 0.4)
                solution = f"So $x = {n % 97}$, and the answer is $\\boxed{{{n % 97}}}$."
                content = f"<|begin_of_thought|>\n{thought}\n<|end_of_thought|>\n\n{solution}"
                tokens = len(content) // 4
                checks = {"completion_tokens": tokens, "target_min": 1500, "too_short": flags[2],
                          "matches_reference": not flags[0], "boxed_answer": str(n % 97),
                          "coverage_mean": 0.6 if flags[1] else 1.0, "markers": {"wait": 3},
                          "leakage": ["the record"] if flags[3] else [],
                          "truncated": flags[4]}  # fmt: skip
                response = {"id": f"chatcmpl-{n}", "choices": [{"message": {"content": content}}],
                            "usage": {"completion_tokens": tokens}}  # fmt: skip
                created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
                copy.write_row((
                    rng.choice(base["annotations"]), 1, base["record"], base["prompt"],
                    rng.choices(base["endpoints"], [7, 3])[0], '{"model": "model"}', n % 4,
                    f"bench-{n:09}", False, status, 1,
                    "" if status == "succeeded" else "server_error", "", "", tokens,
                    json.dumps({"messages": base["messages"], "model": "model"}),
                    json.dumps(response), content, "", thought, solution, "stop", "model",
                    900, tokens, 0.01, 20000, json.dumps(checks), *flags, 1, False,
                    "provider", created, created, created + timedelta(seconds=20),
                ))  # fmt: skip
        cursor.execute(
            "INSERT INTO curation_tracereview (trace_id, status, approvals, edited_thought, "
            "edited_solution, decided_at) SELECT t.id, (ARRAY['pending', 'approved', "
            "'rejected'])[t.id % 10 + 1], 0, '', '', now() FROM expansion_trace t WHERE "
            "t.status = 'succeeded' AND t.id % 10 < 3 AND NOT EXISTS "
            "(SELECT 1 FROM curation_tracereview r WHERE r.trace_id = t.id)"
        )
        cursor.execute("VACUUM ANALYZE expansion_trace, curation_tracereview, annotator_annotation")


def measure(client, path: str, params: dict, reps: int, budget: float) -> dict:
    from django.core.cache import cache

    times, sql, counts, deadline = [], [], set(), time.monotonic() + budget
    for i in range(reps + 4):
        if i >= 9 and time.monotonic() > deadline:
            break  # a very slow case: at least 5 measured requests, then stop
        if i == 3:
            cache.clear()  # this request counts the queue; the next ones reuse its counts
        elapsed, queries, response = timed_get(client, path, params)
        if i == 3:
            miss, miss_queries = elapsed, queries
        if i >= 4:
            times.append(elapsed)
            sql.append(sum(float(q["time"]) for q in queries) * 1e3)
            counts.add(len(queries))
    r = {"p50": statistics.median(times), "sql": statistics.median(sql), "n": len(times),
         "p95": p95(times), "miss": miss, "queries": max(*counts, len(miss_queries)),
         "captured": miss_queries + queries,
         "count": response.json()["count"] if path.startswith("/api/") else None}  # fmt: skip
    r["cell"] = (f"{r['miss']:6.0f}ms {r['p50']:7.1f}ms {r['p95']:6.0f}ms {r['sql']:5.0f}ms "
                 f"{r['queries']:>2}" + ("*" if len(counts) > 1 else " "))  # fmt: skip
    return r


def cases(base: dict, pending: int) -> list:
    since = datetime.now(UTC).date() - timedelta(days=100)
    deep = {kind: str(min(200, math.ceil(pending / n))) for kind, n in (("html", 25), ("api", 50))}
    return [
        ("no filter", {}),
        ("checks=answer_mismatch", {"checks": "answer_mismatch"}),
        ("checks=leakage+too_short", {"checks": ["leakage", "too_short"]}),
        ("subject=Algebra&level=3", {"subject": "Algebra", "level": "3"}),
        ("endpoint=<2nd>", {"endpoint": str(base["endpoints"][1])}),
        ("prompt=<active>", {"prompt": str(base["prompt"])}),
        ("annotator=<one of 50>", {"annotator": str(base["annotator"])}),
        ("since/until (14 days)", {"since": str(since), "until": str(since + timedelta(14))}),
        ("q=wait", {"q": "wait"}),
        ("page 2", {"page": "2"}),
        ("page 200 (or last)", {"page": deep}),
    ]


def run_size(client, base: dict, size: int, pending: int, args, results: dict) -> None:
    print(f"{'case':26}|{'pg miss':>8} {'p50':>9} {'p95':>8} {'sql':>7}  q |{'api miss':>8} "
          f"{'p50':>9} {'p95':>8} {'sql':>7}  q |{'matching':>9}")  # fmt: skip
    for label, params in cases(base, pending):
        row = {}
        for kind, path in (("html", "/review/"), ("api", "/api/review-queue/")):
            query = {k: v[kind] if isinstance(v, dict) else v for k, v in params.items()}
            r = measure(client, path, query, args.reps, args.budget)
            row[kind] = results[size, label, kind] = r
        n = min(row["html"]["n"], row["api"]["n"])
        name = label + (f" [n={n}]" if n < args.reps else "")
        print(f"{name:26}|{row['html']['cell']}|{row['api']['cell']}|{row['api']['count']:>9,}")
    mine = {k: v for k, v in results.items() if k[0] == size}
    slow = [f"{k[1]} ({k[2]}, {v['p95']:.0f} ms)" for k, v in mine.items() if v["p95"] >= 100]
    many = [f"{k[1]} ({k[2]}, {v['queries']})" for k, v in mine.items() if v["queries"] > 10]
    cold = [f"{k[1]} ({k[2]}, {v['miss']:.0f} ms)" for k, v in mine.items() if v["miss"] >= 100]
    print(f"p95 < 100 ms: {'holds' if not slow else 'MISSED: ' + '; '.join(slow)}")
    print(f"miss < 100 ms: {'holds' if not cold else 'MISSED: ' + '; '.join(cold)}")
    print(f"<= 10 queries per page: {'holds' if not many else 'MISSED: ' + '; '.join(many)}")


def report(results: dict, sizes: list, explain: int) -> None:
    from django.db import connection

    print("(miss = a request whose counts were not cached; sql = median summed query time; "
          "* = the query count varied between measured repetitions, the maximum is shown; "
          "[n=] = fewer repetitions: over --budget)")  # fmt: skip
    differ = [f"{label} ({kind}): " + ", ".join(
        f"{results[s, label, kind]['queries']} at {s:,}" for s in sizes)
        for (size, label, kind) in results if size == sizes[0]
        if len({results[s, label, kind]["queries"] for s in sizes}) > 1]  # fmt: skip
    print(f"\nsame query count at {', '.join(f'{s:,}' for s in sizes)} traces: "
          + ("yes" if not differ else "NO: " + "; ".join(differ)))  # fmt: skip
    largest = sorted(((v["p95"], k) for k, v in results.items() if k[0] == sizes[-1]),
                     reverse=True)[:explain]  # fmt: skip
    for slowest, (size, label, kind) in largest:
        worst = max(results[size, label, kind]["captured"], key=lambda q: float(q["time"]))
        print(f"\n-- slowest case at {size:,}: {label} ({kind}), p95 {slowest:.1f} ms; its slowest "
              f"query ({float(worst['time']) * 1e3:.0f} ms):\n{worst['sql']}\n")  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + worst["sql"])
            print("\n".join(line for (line,) in cursor.fetchall()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000", help="trace counts, ascending")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--budget", type=float, default=60, help="seconds per case, about")
    parser.add_argument("--explain", type=int, default=1, help="slowest cases to EXPLAIN")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    django_on_fresh_database(DB, var_prefix="bench-review-")
    from django.test import Client

    from curation.selectors import review_queue

    rng = random.Random(20240611)
    base = seed_base(rng)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(base["reviewer"])
    results, seeded = {}, 0
    for size in sizes:
        started = time.perf_counter()
        seed_traces(base, rng, seeded, size - seeded)
        seeded = size
        pending = review_queue(reviewer=base["reviewer"]).count()
        print(f"\n== {size:,} traces ({pending:,} awaiting review; seeded in "
              f"{time.perf_counter() - started:.0f} s; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) ==")  # fmt: skip
        run_size(client, base, size, pending, args, results)
    report(results, sizes, args.explain)


if __name__ == "__main__":
    main()
