"""Analytics at scale: server time of the dashboard, comparison and drill-down pages.

Creates a fresh PostgreSQL database (``bench_analytics``, dropped first), migrates it and seeds
50 annotators, 5 reviewers, 5,000 problems with 2 submitted annotations each, 3 prompt
versions and 3 endpoints. Traces are inserted in SQL up to each of ``--sizes`` in turn: 90 %
succeeded (else failed or queued), finished over the past year (1 % today), with tokens, cost
and flags; every succeeded trace gets its analytics profile and counts for about half of the
ten built-in markers; 40 % of succeeded traces are decided (approved, rejected or returned)
and a tenth of those by a second reviewer too. ``VACUUM ANALYZE`` follows each phase.

Each page is requested in-process with Django's test Client: ``--reps`` requests after 2
warm-ups, both with the figure cache bypassed (an admin's ``?fresh=1``: every aggregate runs,
as in the worker that refreshes them) and from the cache as a reviewer (what users get: the
beat schedule and the background refresh keep the figures there). Printed: p50/p95 wall
time of ``client.get`` (middleware, queries, rendering), the median summed SQL time and the
queries per request. Target: p95 under 300 ms. Figures are printed, never asserted.

    .venv/bin/python bench/analytics.py [--sizes 10000,100000] [--reps 20]
"""

import argparse
import os
import statistics
import time

from support import django_on_fresh_database, p95, timed_get

DB = "bench_analytics"
TRACE_SQL = """
INSERT INTO expansion_trace (annotation_id, annotation_version, record, prompt_id, endpoint_id,
    params, sample_index, idempotency_key, is_simulated, status, attempts, error_kind,
    error_message, run_id, progress_tokens, request, response, content, reasoning, thought,
    solution, finish_reason, model_reported, prompt_tokens, completion_tokens, cost, latency_ms,
    checks, flag_answer_mismatch, flag_low_coverage, flag_too_short, flag_leakage,
    flag_truncated, created_at, started_at, finished_at)
SELECT a.ids[1 + g %% array_length(a.ids, 1)], 1, '{}', p.ids[1 + (g / 7) %% 3],
    e.ids[1 + (g / 3) %% 3], '{}', 0, 'bench-' || g, false, s.status, 1, '', '', '',
    s.tokens, '{}', '{}', '', '', 'Wait. So x = 4.', '\\boxed{4}', 'stop', 'model', 900,
    s.tokens, s.tokens * 0.000002 + 0.0009, 20000, '{}', random() < 0.15, random() < 0.2,
    s.tokens < 1500, random() < 0.05, random() < 0.05, s.finished, s.finished, s.finished
FROM generate_series(%(start)s, %(stop)s - 1) g
CROSS JOIN (SELECT array_agg(id) ids FROM annotator_annotation) a
CROSS JOIN (SELECT array_agg(id ORDER BY id) ids FROM expansion_promptversion) p
CROSS JOIN (SELECT array_agg(id ORDER BY id) ids FROM expansion_llmendpoint) e
CROSS JOIN LATERAL (SELECT
    CASE WHEN random() < 0.9 THEN 'succeeded' WHEN random() < 0.5 THEN 'failed'
         ELSE 'queued' END AS status,
    (800 + random() * 3500 + (g %% 3) * 400)::int AS tokens,
    CASE WHEN g %% 100 = 0 THEN now() - random() * interval '2 hours'
         ELSE now() - random() * interval '365 days' END AS finished) s
"""
PROFILE_SQL = """
INSERT INTO curation_traceprofile (trace_id, tokens, lines, coverage, answer_match)
SELECT id, completion_tokens, 10 + completion_tokens / 40 + (random() * 30)::int,
       CASE WHEN flag_low_coverage THEN 0.6 ELSE 0.95 END, NOT flag_answer_mismatch
FROM expansion_trace t WHERE status = 'succeeded' AND id >= %(first)s;
INSERT INTO curation_markercount (trace_id, marker_id, count)
SELECT t.id, m.id, 1 + (random() * 6)::int
FROM expansion_trace t CROSS JOIN curation_marker m
WHERE t.status = 'succeeded' AND t.id >= %(first)s AND random() < 0.5;
"""
REVIEW_SQL = """
WITH decided AS (
    SELECT t.id, (ARRAY['approved', 'approved', 'rejected', 'returned'])[1 + t.id %% 4] AS status,
           t.finished_at + interval '1 hour' AS at,
           r.ids[1 + t.id %% 5] AS first, r.ids[1 + (t.id + 1) %% 5] AS second
    FROM expansion_trace t
    CROSS JOIN (SELECT array_agg(u.id ORDER BY u.id) ids FROM auth_user u
                WHERE u.username LIKE 'reviewer%%') r
    WHERE t.status = 'succeeded' AND t.id >= %(first)s AND t.id %% 10 < 4
), reviews AS (
    INSERT INTO curation_tracereview (trace_id, status, approvals, edited_thought,
        edited_solution, decided_at)
    SELECT id, status, 1, '', '', at FROM decided RETURNING trace_id
)
INSERT INTO curation_reviewdecision (trace_id, reviewer_id, decision, reason, comment,
    thought_before, solution_before, thought_after, solution_after, created_at)
SELECT id, first, CASE status WHEN 'approved' THEN 'approve' WHEN 'rejected' THEN 'reject'
                  ELSE 'return' END, '', '', '', '', '', '', at FROM decided
UNION ALL
SELECT id, second, CASE WHEN id %% 3 = 0 THEN 'reject' ELSE 'approve' END, '', '', '', '', '',
       '', at - interval '5 minutes' FROM decided WHERE id %% 40 < 4 AND status <> 'returned'
"""


def seed_base() -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from annotator.models import Annotation, Problem
    from annotator.roles import Role
    from expansion.models import LLMEndpoint
    from expansion.prompts import prompt_active, prompt_version_create

    user_model = get_user_model()
    names = [f"annotator{i:02}" for i in range(50)] + [f"reviewer{i}" for i in range(5)]
    users = user_model.objects.bulk_create(
        user_model(username=name, password=UNUSABLE_PASSWORD_PREFIX) for name in names
    )
    for user in users:
        role = Role.REVIEWER if user.username.startswith("reviewer") else Role.ANNOTATOR
        user.groups.add(Group.objects.get(name=role))
    admin = user_model.objects.create(username="admin", password=UNUSABLE_PASSWORD_PREFIX)
    admin.groups.add(Group.objects.get(name=Role.ADMIN))
    problems = Problem.objects.bulk_create(
        Problem(source="bench", external_id=f"p{i:05}", statement=f"Solve ${i}x + 1 = 0$.",
                reference_answer="4", subject="Algebra", level=1 + i % 5)
        for i in range(5000))  # fmt: skip
    now = timezone.now()
    Annotation.objects.bulk_create(
        Annotation(problem=problem, annotator=users[(problem.pk + k) % 50], status="submitted",
                   final_answer="4", submitted_at=now, time_spent_seconds=300 + problem.pk % 600)
        for problem in problems for k in (0, 1))  # fmt: skip
    prompt_active()
    for n in (2, 3):
        prompt_version_create(system=f"Variant {n}.", invariants="Keep every step.")
    for i in range(3):
        LLMEndpoint.objects.create(name=f"bench-{i}", base_url="http://127.0.0.1:9/v1",
                                   model=f"model-{i}")  # fmt: skip
    return {"reviewer": users[-1], "admin": admin}


def seed_traces(start: int, stop: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM expansion_trace")
        (first,) = cursor.fetchone()
        cursor.execute(TRACE_SQL, {"start": start, "stop": stop})
        for statement in PROFILE_SQL.split(";")[:2]:
            cursor.execute(statement, {"first": first})
        cursor.execute(REVIEW_SQL, {"first": first})
        cursor.execute(
            "VACUUM ANALYZE expansion_trace, curation_traceprofile, curation_markercount, "
            "curation_tracereview, curation_reviewdecision"
        )


def measure(client, path: str, params: dict, reps: int) -> dict:
    times, sql, counts = [], [], set()
    for i in range(reps + 2):
        elapsed, queries, _ = timed_get(client, path, params)
        if i >= 2:
            times.append(elapsed)
            sql.append(sum(float(q["time"]) for q in queries) * 1e3)
            counts.add(len(queries))
    return {"p50": statistics.median(times), "p95": p95(times), "sql": statistics.median(sql),
            "queries": max(counts), "captured": queries}  # fmt: skip


def cases(prompts: list[int]) -> list[tuple[str, str, dict]]:
    compare = {"a": f"prompt:{prompts[0]}", "b": f"prompt:{prompts[1]}"}
    return [
        ("dashboard", "/analytics/", {}),
        ("dashboard, markers by model", "/analytics/", {"group": "model"}),
        ("dashboard, one prompt version", "/analytics/", {"scope": f"prompt:{prompts[2]}"}),
        ("compare two prompt versions", "/analytics/compare/", compare),
        ("compare two models", "/analytics/compare/", {"a": "model:model-0", "b": "model:model-1"}),
        ("traces without 'wait'", "/analytics/traces/", {"lacks": "wait"}),
        ("traces with 'hmm', flagged mismatch", "/analytics/traces/",
         {"has": "hmm", "flag": "answer_mismatch"}),
        ("traces of a histogram bar", "/analytics/traces/",
         {"tokens_min": 2000, "tokens_max": 2500}),
        ("traces approved today", "/analytics/traces/",
         {"review": "approved", "decided_since": time.strftime("%Y-%m-%d")}),
    ]  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="trace counts, ascending")
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest query")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.environ.pop("REDIS_URL", None)  # the file cache: no server shared with other runs
    django_on_fresh_database(DB, var_prefix="bench-analytics-")
    from django.test import Client

    from expansion.models import PromptVersion

    base = seed_base()
    prompts = list(PromptVersion.objects.order_by("version").values_list("pk", flat=True))
    client, admin = Client(HTTP_HOST="127.0.0.1"), Client(HTTP_HOST="127.0.0.1")
    client.force_login(base["reviewer"])
    admin.force_login(base["admin"])  # only admins may have figures recomputed on request
    seeded, worst = 0, []
    for size in sizes:
        started = time.perf_counter()
        seed_traces(seeded, size)
        seeded = size
        print(f"\n== {size:,} traces (seeded in {time.perf_counter() - started:.0f} s; load "
              f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs) ==")  # fmt: skip
        print(f"{'case':38}|{'computed p50':>13} {'p95':>7} {'sql':>7}  q |{'cached p50':>11} "
              f"{'p95':>7}  q")  # fmt: skip
        for label, path, params in cases(prompts):
            cold = measure(admin, path, {**params, "fresh": "1"}, args.reps)
            warm = measure(client, path, params, args.reps)
            worst.append((cold["p95"], size, label, cold))
            print(f"{label:38}|{cold['p50']:11.1f}ms {cold['p95']:5.0f}ms {cold['sql']:5.0f}ms "
                  f"{cold['queries']:>2} |{warm['p50']:9.1f}ms {warm['p95']:5.0f}ms "
                  f"{warm['queries']:>2}")  # fmt: skip
    slow = [f"{label} at {size:,} ({p95:.0f} ms)" for p95, size, label, _ in worst if p95 >= 300]
    print("\ncomputed p95 < 300 ms: " + ("holds" if not slow else "MISSED: " + "; ".join(slow)))
    if args.explain:
        from django.db import connection

        p95, size, label, cold = max(worst, key=lambda item: item[0])
        query = max(cold["captured"], key=lambda q: float(q["time"]))
        print(f"\n-- slowest: {label} at {size:,}; its slowest query:\n{query['sql']}\n")
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + query["sql"])
            print("\n".join(line for (line,) in cursor.fetchall()))


if __name__ == "__main__":
    main()
