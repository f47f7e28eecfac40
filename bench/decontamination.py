"""Benchmark decontamination at scale: 100,000 problems against 10,000 benchmark items.

Creates a fresh PostgreSQL database (``bench_decontamination`` on 127.0.0.1, dropped first),
migrates it and stores ``--problems`` problems of 30 to 60 words drawn from a vocabulary of
made-up words, numbers and LaTeX; ``--planted`` of them are copies of benchmark items (half
the same text with other spacing and case, half a new problem that quotes 12 words of an
item). Then, each timed:

1. ``benchmark_add`` of a JSONL file of ``--items`` items (read, normalized, stored, and
   every problem of the bank compared with them): the path of ``manage.py benchmarks_add``;
2. ``problems_decontaminate()``: every problem compared again with every benchmark, records
   replaced (``manage.py decontaminate`` without the regrouping);
3. the parts of it: building the in-memory index, and matching the problems' texts alone;
4. ``problems_import`` of ``--import-rows`` new rows into that bank (each compared with the
   benchmarks and with the bank's problems for near-duplicates; the bank was seeded without
   stored signatures, so this first import makes every problem's), when ``--import-rows`` is
   above 0. ``bench/import_groups.py`` measures an import into a bank that has them.

Figures are printed, never asserted; the planted copies found are printed beside them.
Target: step 1 and step 2 each under a minute.

    .venv/bin/python bench/decontamination.py [--problems 100000] [--items 10000]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import django_on_fresh_database  # noqa: E402

LATEX = ["$x^{%d}$", "$\\frac{1}{%d}$", "$a+%d$", "$\\sqrt{%d}$", "$2^{%d}$", "$\\pi r^%d$"]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qu", "an", "el", "or"]
    words = {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(size * 2)}
    return sorted(words)[:size]


def text(rng: random.Random, words: list[str]) -> str:
    parts = []
    for _ in range(rng.randint(30, 60)):
        roll = rng.random()
        parts.append(rng.choice(LATEX) % rng.randint(2, 99) if roll < 0.05 else
                     str(rng.randint(0, 999)) if roll < 0.15 else rng.choice(words))  # fmt: skip
    return " ".join(parts).capitalize() + "?"


class Timer:
    """Wall time, and the CPU time of this process (the database server's is not in it):
    on a shared machine the second says what the code costs, the first what a person waits."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc_info):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return (
            f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--planted", type=int, default=1_000)
    parser.add_argument("--import-rows", type=int, default=10_000)
    options = parser.parse_args()
    django_on_fresh_database("bench_decontamination", var_prefix="bench-decontamination-")

    from annotator.benchmarks import benchmark_add
    from annotator.decontamination import BenchmarkIndex, problems_decontaminate
    from annotator.models import Contamination, Problem
    from annotator.problem_import import problems_import

    rng = random.Random(19)
    words = vocabulary(rng, 5000)
    items = [text(rng, words) for _ in range(options.items)]
    statements = [text(rng, words) for _ in range(options.problems)]
    for n in range(options.planted):
        item = items[rng.randrange(len(items))]
        if n % 2:
            statements[n] = "  " + item.upper().replace(" ", "  ") + " "
        else:
            quoted = " ".join(item.split()[5:17])
            statements[n] = f"{text(rng, words)} Note that {quoted} holds."
    started = time.perf_counter()
    Problem.objects.bulk_create(
        (Problem(source="bench", external_id=f"p{n}", statement=statement, reference_answer="1")
         for n, statement in enumerate(statements)), batch_size=5000,
    )  # fmt: skip
    print(f"seeded {options.problems:,} problems in {time.perf_counter() - started:.1f} s")

    folder = Path(tempfile.mkdtemp(prefix="bench-decontamination-"))
    path = folder / "bench.jsonl"
    path.write_text("".join(json.dumps({"problem": item, "id": n}) + "\n"
                            for n, item in enumerate(items)))  # fmt: skip

    with Timer() as took:
        report = benchmark_add(path=path, name="bench")
    print(f"1. benchmark_add of {options.items:,} items against {options.problems:,} problems: "
          f"{took}; {report.contaminated['bench']:,} problems marked "
          f"(planted {options.planted:,})")  # fmt: skip

    with Timer() as took:
        counts = problems_decontaminate()
    print(f"2. problems_decontaminate of {options.problems:,} problems against "
          f"{options.items:,} items: {took}; {counts['bench']:,} marked; "
          f"{Contamination.objects.filter(exact=True).count():,} exact")  # fmt: skip

    with Timer() as built:
        index = BenchmarkIndex()
    with Timer() as matched:
        found = sum(bool(index.match(statement)) for statement in statements)
    print(f"3. index of {options.items:,} items built in {built}; {options.problems:,} texts "
          f"matched in memory in {matched}, {matched.cpu / options.problems * 1e6:.0f} µs CPU "
          f"each; {found:,} found")  # fmt: skip

    if options.import_rows:
        rows = folder / "import.jsonl"
        rows.write_text("".join(
            json.dumps({"problem": text(rng, words) if n % 10 else items[n], "answer": "1",
                        "unique_id": f"new/{n}"}) + "\n"
            for n in range(options.import_rows)
        ))  # fmt: skip
        with Timer() as took:
            imported = problems_import(path=rows, source="new")
        print(f"4. problems_import of {options.import_rows:,} rows into a bank of "
              f"{options.problems:,}: {took}; {imported.contaminated['bench']:,} "
              f"overlap the benchmark, {imported.near_duplicates:,} near-duplicates")  # fmt: skip


if __name__ == "__main__":
    main()
