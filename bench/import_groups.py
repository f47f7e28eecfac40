"""Benchmark an import's near-duplicate grouping: 10,000 rows into a bank of 100,000.

Creates a fresh PostgreSQL database (``bench_importgroup`` on 127.0.0.1, dropped first),
migrates it and stores ``--problems`` problems of 30 to 60 words drawn from a vocabulary of
made-up words, numbers and LaTeX, ``--bank-pairs`` of them near-duplicates of another (so
the bank has groups). Then, each timed:

1. ``problem_groups_store()``: every signature made and stored, the bank grouped (the path
   of ``manage.py decontaminate``, and what the first import after the migration costs);
2. ``POST /api/problems/import/`` of ``--rows`` rows by an admin (the API's code path:
   upload, validation, upsert, benchmarks, near-duplicates), ``--planted`` of them copies of
   bank problems (half with other spacing and case, half with a word added) and
   ``--incoming-pairs`` pairs of near-duplicates among the incoming rows alone;
3. ``problem_groups_store(recompute=False)``: the whole bank regrouped from the stored
   signatures, to compare with the groups the import left.

Figures are printed, never asserted: the near-duplicates the import reported, whether every
planted one landed in its bank problem's group, how many statements it hashed, and whether
the full regroup gives the same groups. Target: step 2 well under a minute.

    .venv/bin/python bench/import_groups.py [--problems 100000] [--rows 10000]
"""

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.decontamination import Timer, text, vocabulary  # noqa: E402
from bench.support import django_on_fresh_database  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--bank-pairs", type=int, default=500)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=1_000)
    parser.add_argument("--incoming-pairs", type=int, default=100)
    options = parser.parse_args()
    django_on_fresh_database("bench_importgroup", var_prefix="bench-importgroup-")

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from annotator import near_duplicates
    from annotator.models import NearDuplicate, Problem
    from annotator.problem_groups import problem_groups_store
    from annotator.roles import Role

    rng = random.Random(23)
    words = vocabulary(rng, 5000)
    statements = [text(rng, words) for _ in range(options.problems)]
    for n in range(options.bank_pairs):
        statements[2 * n + 1] = statements[2 * n] + " " + rng.choice(words)
    Problem.objects.bulk_create(
        (Problem(source="bench", external_id=f"p{n}", statement=statement, reference_answer="1")
         for n, statement in enumerate(statements)), batch_size=5000,
    )  # fmt: skip
    print(f"seeded {options.problems:,} problems ({options.bank_pairs:,} near-duplicate pairs)")

    with Timer() as took:
        grouped = problem_groups_store()
    print(f"1. problem_groups_store() of {options.problems:,} problems: {took}; "
          f"{grouped:,} problems in groups")  # fmt: skip

    # Planted rows copy bank problems past the seeded pairs; the pairs follow them.
    sources = rng.sample(range(2 * options.bank_pairs, options.problems), options.planted)
    rows = [text(rng, words) for _ in range(options.rows)]
    for n, source in enumerate(sources):
        original = statements[source]
        rows[n] = ("  " + original.upper().replace(" ", "  ") if n % 2
                   else original + " " + rng.choice(words))  # fmt: skip
    for n in range(options.incoming_pairs):
        first = options.planted + 2 * n
        rows[first + 1] = rows[first] + " " + rng.choice(words)
    body = "".join(json.dumps({"problem": statement, "answer": "1", "unique_id": f"new/{n}"})
                   + "\n" for n, statement in enumerate(rows)).encode()  # fmt: skip

    admin = get_user_model().objects.create_user("bench-admin")
    admin.groups.add(Group.objects.get_or_create(name=Role.ADMIN)[0])
    client = APIClient(HTTP_HOST="127.0.0.1")
    client.force_authenticate(admin)
    hashed = []
    made = near_duplicates.signatures

    def counted(texts):
        hashed.append(len(texts))
        return made(texts)

    near_duplicates.signatures = counted
    upload = SimpleUploadedFile("import.jsonl", body, content_type="application/jsonl")
    with Timer() as took:
        response = client.post("/api/problems/import/", {"file": upload, "source": "new"},
                               format="multipart")  # fmt: skip
    near_duplicates.signatures = made
    if response.status_code != 200:
        sys.exit(f"import refused: {response.status_code} {response.content[:500]!r}")
    report = response.json()
    group_of = dict(NearDuplicate.objects.values_list("problem_id", "group"))
    pk_of = dict(Problem.objects.values_list("external_id", "pk"))
    found = sum(
        group_of.get(pk_of[f"new/{n}"]) is not None
        and group_of.get(pk_of[f"new/{n}"]) == group_of.get(pk_of[f"p{source}"])
        for n, source in enumerate(sources)
    )
    pairs = sum(
        group_of.get(pk_of[f"new/{options.planted + 2 * n}"]) is not None
        and group_of.get(pk_of[f"new/{options.planted + 2 * n}"])
        == group_of.get(pk_of[f"new/{options.planted + 2 * n + 1}"])
        for n in range(options.incoming_pairs)
    )
    print(f"2. POST /api/problems/import/ of {options.rows:,} rows into a bank of "
          f"{options.problems:,}: {took}; {report['created']:,} created, "
          f"{report['near_duplicates']:,} reported near-duplicates of the bank (planted "
          f"{options.planted:,}; {found:,} of them grouped with their bank problem); "
          f"{pairs:,} of {options.incoming_pairs:,} incoming pairs grouped; "
          f"{sum(hashed):,} statements hashed")  # fmt: skip

    after_import = group_of
    with Timer() as took:
        grouped = problem_groups_store(recompute=False)
    full = dict(NearDuplicate.objects.values_list("problem_id", "group"))
    print(f"3. problem_groups_store(recompute=False) of {options.problems + options.rows:,} "
          f"problems: {took}; {grouped:,} problems in groups; the import's groups are "
          f"{'the same' if full == after_import else 'DIFFERENT'}")  # fmt: skip


if __name__ == "__main__":
    main()
