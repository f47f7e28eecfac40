r"""Dataset export at scale: wall time and peak memory of ``export_dataset`` against ``psql``.

Creates a fresh PostgreSQL database (``bench_export`` on 127.0.0.1, dropped first), migrates
it (``manage.py migrate``) and seeds 20 annotators, a reviewer, the active prompt and a real
endpoint. Traces are added in phases up to each of ``--sizes`` (COPY, INSERT ... SELECT, then
VACUUM ANALYZE): a problem and a submitted annotation per 2 traces; each trace succeeded and
filled as the engine fills it (thought ~5 KB and solution ~1 KB of varied text, content,
request, raw response, checks, tokens), with an approved review and an ``approve`` decision
holding ``thought_before``/``solution_before`` as the review service writes them.

First, once: the start-up of an export that matches nothing (interpreter, Django set-up,
the count query; ``export_dataset`` runs no system checks). Then per size, ``--reps`` times
(best kept): ``manage.py export_dataset --format messages --output DIR --force`` as a
subprocess (wall time; peak RSS from GNU time), then ``psql`` ``\copy``-ing the same rows
(same joins, filters, order; the fields the records are built from) out as one JSON text
per row. Figures are printed, never asserted. Targets: export <= 2 x psql at the largest
size, peak RSS < 200 MB and flat (largest size within 20 % of the smallest).

    .venv/bin/python bench/export.py [--sizes 10000,100000] [--reps 2]
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PY = ROOT / ".venv" / "bin" / "python"
PG, DB = "postgres://postgres@127.0.0.1:5432/", "bench_export"
SUBJECTS = ["Algebra", "Prealgebra", "Geometry", "Number Theory", "Precalculus"]
LINES = """Let me write down what we know: {a}x + {b} = {c}.
Subtracting {b} from both sides gives {a}x = {d}, so x should be {d}/{a}.
So far we have x = {e:.4f}; next, let me check it against the original equation.
Hmm, what if I try substituting x = {a} instead and see what happens?
Alternatively, I could factor the expression as (x - {a})(x + {b}) and read off the roots.
Let me verify the arithmetic once more: {a} + {b} = {g}, and {g} - {b} = {a}.
By the Pythagorean theorem the hypotenuse squared is $\\sqrt{{{a}^2 + {b}^2}}^2 = {i}$.
Let me take stock: the equation is linear, so there is exactly one solution.
Wait, that can't be right: {a} + {a} is {j}, not {k}. Let me redo it.
If the probability of one outcome is 1/{a}, then two independent ones give 1/{f}.""".splitlines()
STEPS = [{"kind": "attempt", "text": "Isolate x: subtract, divide.", "notes": ["ax=b"]},
         {"kind": "correction", "text": "I dropped a factor; redo it.", "notes": []},
         {"kind": "verification", "text": "Substitute back: it checks.", "notes": []}]  # fmt: skip
PARAMS = {"model": "bench-model", "temperature": 0.7, "top_p": 1.0, "max_tokens": 8192}


def sentences(rng: random.Random, count: int) -> list[str]:
    abc = [(rng.randint(2, 99), rng.randint(2, 99), rng.randint(100, 9999)) for _ in range(count)]
    return [rng.choice(LINES).format(a=a, b=b, c=c, d=c - b, e=(c - b) / a, f=a * a, g=a + b,
            i=a * a + b * b, j=2 * a, k=2 * a + 1) for a, b, c in abc]  # fmt: skip


def text(rng: random.Random, pool: list[str], size: int) -> str:
    paragraphs, left = [], size
    while left > 0:
        paragraphs.append(" ".join(rng.choices(pool, k=rng.randint(3, 6))))
        left -= len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)


def seed_base() -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX

    from expansion.models import LLMEndpoint
    from expansion.prompts import prompt_active

    user_model, unusable = get_user_model(), UNUSABLE_PASSWORD_PREFIX
    names = [f"annotator{i:02}" for i in range(20)] + ["reviewer"]
    users = user_model.objects.bulk_create(user_model(username=n, password=unusable) for n in names)
    endpoint = LLMEndpoint.objects.create(name="bench", base_url="https://llm.invalid/v1",
                                          model="bench-model", is_simulated=False)  # fmt: skip
    return {"annotators": [u.pk for u in users[:-1]], "reviewer": users[-1].pk,
            "prompt": prompt_active(), "endpoint": endpoint.pk}  # fmt: skip


SEED_SQL = {
    "problems": """COPY annotator_problem (source, external_id, statement, reference_solution,
        reference_answer, subject, level, metadata, created_at, updated_at) FROM STDIN""",
    "annotations": """WITH new AS (INSERT INTO annotator_annotation (status, version, steps,
        final_answer, time_spent_seconds, created_at, updated_at, submitted_at, annotator_id,
        problem_id, answer_check, mismatch_confirmed, return_comment) SELECT 'submitted', 1,
        %s, '4', 600, now(), now(), now(), (%s::int[])[p.id %% 20 + 1], p.id, 'match', false,
        '' FROM annotator_problem p WHERE NOT EXISTS (SELECT 1 FROM annotator_annotation a
        WHERE a.problem_id = p.id) RETURNING id, problem_id) SELECT new.id, p.statement
        FROM new JOIN annotator_problem p ON p.id = new.problem_id ORDER BY new.id""",
    "traces": """COPY expansion_trace (annotation_id, annotation_version, record, prompt_id,
        endpoint_id, params, sample_index, idempotency_key, is_simulated, status, attempts,
        error_kind, error_message, run_id, progress_tokens, request, response, content,
        reasoning, thought, solution, finish_reason, model_reported, prompt_tokens,
        completion_tokens, cost, latency_ms, checks, flag_answer_mismatch, flag_low_coverage,
        flag_too_short, flag_leakage, flag_truncated, created_at, started_at, finished_at)
        FROM STDIN""",
    "reviews": """INSERT INTO curation_tracereview (trace_id, status, approvals, edited_thought,
        edited_solution, decided_at) SELECT id, 'approved', 1, '', '', now()
        FROM expansion_trace WHERE id > %s""",
    "decisions": """INSERT INTO curation_reviewdecision (decision, reason, comment,
        thought_before, solution_before, thought_after, solution_after, created_at,
        reviewer_id, trace_id) SELECT 'approve', '', '', thought, solution, '', '', now(), %s,
        id FROM expansion_trace WHERE id > %s""",
}


def trace_row(base: dict, rng: random.Random, pool: list[str], n: int, annotation: int,
              statement: str, now: datetime) -> tuple:  # fmt: skip
    """One succeeded trace as the engine stores it (COPY row, SEED_SQL["traces"] order)."""
    from expansion.prompts import build_messages

    thought, answer = text(rng, pool, 5000), n % 97
    solution = text(rng, pool, 950) + f"\n\nSo $x = {answer}$: $\\boxed{{{answer}}}$"
    content = (f"<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
               f"<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>")  # fmt: skip
    tokens, record = len(content) // 4, {"steps": STEPS, "final_answer": "4"}
    messages = build_messages(base["prompt"], problem_statement=statement, record=record)
    response = {"id": f"chatcmpl-{n}", "model": "bench-model", "finish_reason": "stop",
                "content": content, "reasoning": "",
                "usage": {"prompt_tokens": 1200, "completion_tokens": tokens}}  # fmt: skip
    checks = {"completion_tokens": tokens, "target_min": 1500, "too_short": False,
              "matches_reference": True, "boxed_answer": str(answer), "coverage_mean": 0.9,
              "markers": {"wait": 2, "hmm": 1}, "leakage": [], "truncated": False}  # fmt: skip
    return (annotation, 1, json.dumps(record), base["prompt"].pk, base["endpoint"],
            json.dumps(PARAMS), n % 2, f"bench-{n:09}", False, "succeeded", 1, "", "", "",
            tokens, json.dumps({"messages": messages, **PARAMS}), json.dumps(response),
            content, "", thought, solution, "stop", "bench-model", 1200, tokens, 0.0123, 42000,
            json.dumps(checks), False, False, False, False, False, now, now, now)  # fmt: skip


def seed(base: dict, rng: random.Random, start: int, stop: int) -> None:
    """Traces start..stop-1 (2 per problem/annotation), with approved reviews and decisions."""
    from django.db import connection

    pool, now = sentences(rng, 5000), datetime.now(UTC)
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        with cursor.copy(SEED_SQL["problems"]) as copy:
            for g in range(start // 2, stop // 2):
                statement = (f"Find all real $x$ such that ${g % 97 + 2}x^2 - {g}x + "
                             f"{g % 13} = 0$. {text(rng, pool, 150)}")  # fmt: skip
                copy.write_row(("bench", f"p{g:07}", statement, "", str(g % 97),
                                SUBJECTS[g % 5], g % 5 + 1, "{}", now, now))  # fmt: skip
        steps = (json.dumps(STEPS), base["annotators"])
        annotations = cursor.execute(SEED_SQL["annotations"], steps).fetchall()
        last = cursor.execute("SELECT coalesce(max(id), 0) FROM expansion_trace").fetchone()[0]
        with cursor.copy(SEED_SQL["traces"]) as copy:
            for n in range(start, stop):
                annotation, statement = annotations[(n - start) // 2]
                copy.write_row(trace_row(base, rng, pool, n, annotation, statement, now))
        cursor.execute(SEED_SQL["reviews"], (last,))
        cursor.execute(SEED_SQL["decisions"], (base["reviewer"], last))
        for table in ("annotator_problem", "annotator_annotation", "expansion_trace",
                      "curation_tracereview", "curation_reviewdecision"):  # fmt: skip
            cursor.execute(f"VACUUM ANALYZE {table}")


# The fields export_dataset builds a "messages" record from, with the same joins, filters
# (approved, succeeded, not simulated) and order; one JSON text per row.
PSQL_QUERY = """SELECT row_to_json(t) FROM (SELECT tr.id AS trace_id, p.statement,
 coalesce(nullif(r.edited_thought, ''), tr.thought) AS thought,
 coalesce(nullif(r.edited_solution, ''), tr.solution) AS solution, p.source, p.external_id,
 p.subject, p.level, pv.name || ' v' || pv.version AS prompt_version,
 tr.params->>'model' AS model, tr.completion_tokens, r.status AS review, tr.is_simulated,
 a.annotator_id, (SELECT array_agg(d.reviewer_id ORDER BY d.created_at)
   FROM curation_reviewdecision d WHERE d.trace_id = tr.id AND d.decision = 'approve')
   AS reviewers, e.name AS endpoint
 FROM expansion_trace tr JOIN annotator_annotation a ON a.id = tr.annotation_id
 JOIN annotator_problem p ON p.id = a.problem_id
 JOIN curation_tracereview r ON r.trace_id = tr.id
 JOIN expansion_promptversion pv ON pv.id = tr.prompt_id
 JOIN expansion_llmendpoint e ON e.id = tr.endpoint_id
 WHERE tr.status = 'succeeded' AND r.status = 'approved' AND NOT tr.is_simulated
 ORDER BY p.source, p.external_id, tr.id) t"""


def run(cmd: list[str], work: Path, fails: bool = False) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, stdout). GNU time's %M: a child forked by this big process
    would count in its ru_maxrss the parent's pages it held until exec."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(work / "rss"), *cmd],
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if bool(done.returncode) != fails or (fails and "Nothing to export" not in done.stderr):
        sys.exit(f"{cmd[:3]} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-2000:]}")
    return elapsed, int((work / "rss").read_text().split()[-1]) / 1024, done.stdout


def measure(reps: int, work: Path) -> dict:
    export_dir, psql_out = work / "export", work / "psql.jsonl"
    export_cmd = [str(PY), "manage.py", "export_dataset", "--format", "messages",
                  "--output", str(export_dir), "--force"]  # fmt: skip
    copy = f"\\copy ({' '.join(PSQL_QUERY.split())}) TO '{psql_out}'"
    psql_cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U",
                "postgres", "-d", DB, "-c", copy]  # fmt: skip
    pairs = [(run(export_cmd, work), run(psql_cmd, work)) for _ in range(reps)]
    exports, psqls = [p[0] for p in pairs], [p[1] for p in pairs]
    lines = exports[-1][2].splitlines()
    return {"records": sum(int(line.split()[1]) for line in lines if ".jsonl:" in line),
            "export": [e[0] for e in exports], "rss": max(e[1] for e in exports),
            "psql": [p[0] for p in psqls], "psql_rss": max(p[1] for p in psqls),
            "rows": sum(1 for _ in psql_out.open("rb")), "psql_bytes": psql_out.stat().st_size,
            "bytes": (export_dir / "train.jsonl").stat().st_size}  # fmt: skip


def show(size: int, r: dict, seeded_in: float) -> None:
    runs = {k: ", ".join(f"{t:.2f}" for t in r[k]) for k in ("export", "psql")}
    r["best"], r["ratio"] = min(r["export"]), min(r["export"]) / min(r["psql"])
    print(f"\n== {size:,} approved traces (seeded in {seeded_in:.0f} s) ==")
    print(f"records exported        {r['records']:>10,}   (psql rows {r['rows']:,})")
    print(f"export seconds          {r['best']:>10.2f}   (runs: {runs['export']}; "
          f"{r['records'] / r['best']:,.0f} records/s)")  # fmt: skip
    print(f"psql seconds            {min(r['psql']):>10.2f}   (runs: {runs['psql']})")
    print(f"ratio export/psql       {r['ratio']:>10.2f}   (target <= 2)")
    print(f"export peak RSS MB      {r['rss']:>10.1f}   (target < 200; psql {r['psql_rss']:.1f})")
    print(f"output size MB          {r['bytes'] / 1e6:>10.1f}   (psql JSON text "
          f"{r['psql_bytes'] / 1e6:.1f})")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="trace counts, ascending, even")
    parser.add_argument("--reps", type=int, default=2, help="runs per measure; best kept")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-export-"))
    os.environ.update(DATABASE_URL=PG + DB, DEBUG="1", DJANGO_SETTINGS_MODULE="config.settings",
                      VAR_DIR=str(work / "var"), PGCONNECT_TIMEOUT="10")  # fmt: skip
    with psycopg.connect(PG + "postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {DB}")
    run([str(PY), "manage.py", "migrate", "-v", "0"], work)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    base, rng, seeded, results = seed_base(), random.Random(20240611), 0, {}
    # Start-up (interpreter, Django set-up) and the count query: an export that finds nothing.
    nothing = ["export_dataset", "--format", "messages", "--output", str(work), "--source", "-"]
    startup = run([str(PY), "manage.py", *nothing], work, fails=True)
    print(f"start-up (export_dataset matching nothing): {startup[0]:.2f} s, "
          f"peak RSS {startup[1]:.1f} MB")  # fmt: skip
    for size in sizes:
        started = time.perf_counter()
        seed(base, rng, seeded, size)
        seeded, seconds = size, time.perf_counter() - started
        results[size] = measure(args.reps, work)
        show(size, results[size], seconds)
    shutil.rmtree(work, ignore_errors=True)  # ~1.5 GB of output at 100,000
    small, large = results[sizes[0]], results[sizes[-1]]
    peak, growth = max(r["rss"] for r in results.values()), large["rss"] / small["rss"] - 1
    verdict = {True: "holds", False: "MISSED"}
    others = "; ".join(f"{size:,}: {results[size]['ratio']:.2f}" for size in sizes[:-1])
    print(f"\ntargets: export <= 2 x psql at {sizes[-1]:,}: {verdict[large['ratio'] <= 2]} "
          f"(ratio {large['ratio']:.2f}{'; ' + others if others else ''}; start-up "
          f"{startup[0]:.2f} s of each)")  # fmt: skip
    print(f"         peak RSS < 200 MB: {verdict[peak < 200]} (max {peak:.1f} MB)")
    print(f"         memory flat ({sizes[0]:,} -> {sizes[-1]:,}, within 20 %): "
          f"{verdict[abs(growth) <= 0.2]} ({small['rss']:.1f} -> {large['rss']:.1f} MB, "
          f"{growth:+.0%})")  # fmt: skip


if __name__ == "__main__":
    main()
