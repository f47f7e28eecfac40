"""What an export leaves out for hygiene: traces of benchmark problems, near-duplicate traces.

A trace whose problem is in a registered benchmark is left out unless the export allows
that benchmark (``--allow-contaminated``); the manifest and the card say, per benchmark,
how many records were left out and how many kept. With ``--dedup`` the traces of one
problem that are near-duplicates of each other (MinHash over word shingles, the problems'
threshold) are exported once: the first of each group, in the export's order.
"""

from collections import Counter
from collections.abc import Iterable

from django.db.models import OuterRef

from annotator.near_duplicates import Sketch, signature
from annotator.selectors import benchmark_names, benchmarks_of_problems, benchmarks_overview
from annotator.selectors import contaminated as in_benchmark

from ..filters import BenchmarkNamesField
from . import records, rollouts

DEMO_NOTE = ": the demo's problems are MATH-500 itself, the benchmark's test split"


def allowed(filters: dict) -> list[str]:
    return BenchmarkNamesField().to_python(filters.get("allow_contaminated"))


def left_out_by_benchmark(filters: dict) -> Counter:
    """Traces these filters match that their benchmarks leave out, per benchmark name."""
    return _left_out(filters, lambda: records.export_queryset(**filters, decontaminate=False),
                     "annotation__problem")  # fmt: skip


def samples_left_out_by_benchmark(filters: dict, campaigns: list[int]) -> Counter:
    """Rollout samples these filters match that their benchmarks leave out, per benchmark."""
    return _left_out(filters, lambda: rollouts.samples_queryset(
        filters, campaigns=campaigns, decontaminate=False), "problem")  # fmt: skip


def _left_out(filters: dict, matching, problem: str) -> Counter:
    allow = allowed(filters)
    names = [name for name in benchmark_names() if name not in allow]
    if not names:
        return Counter()
    base = matching()
    counts = Counter()
    for name in names:  # a few benchmarks: one count each
        count = base.filter(in_benchmark(OuterRef(problem), benchmark=name)).count()
        if count:
            counts[name] = count
    return counts


class Kept:
    """Counts the records written of problems in an allowed benchmark, per benchmark."""

    def __init__(self, filters: dict):
        self.names = allowed(filters)
        self.of_problem = benchmarks_of_problems(self.names) if self.names else {}
        self.counts: Counter = Counter()

    def written(self, problem_key: str) -> None:
        self.counts.update(self.of_problem.get(problem_key, ()))


def contamination_summary(left: Counter, kept: Counter, allow: list[str]) -> dict:
    """Per registered benchmark: records left out and kept, whether the export allowed it,
    its size, and whether it holds every problem of the bank."""
    summary = {}
    for row in benchmarks_overview():
        name = row["name"]
        summary[name] = {"left_out": left.get(name, 0), "kept": kept.get(name, 0),
                         "allowed": name in allow, "items": row["items"],
                         "holds_every_problem": row["all"]}  # fmt: skip
    return summary


def card_lines(summary: dict) -> list[str]:
    if not summary:
        return []
    lines = ["## Benchmark contamination", "",
             "Traces (and rollout samples) of problems that a registered benchmark contains "
             "(a shared word n-gram or the same normalized text) are left out unless the "
             "export allows that benchmark.", ""]  # fmt: skip
    for name, row in summary.items():
        line = f"- `{name}` ({row['items']:,} items): {row['left_out']:,} record(s) left out"
        line += f", {row['kept']:,} kept"
        if row["allowed"]:
            line += f" (allowed: do not report {name} results of a model trained on these)"
        lines.append(line + ".")
        if row["holds_every_problem"]:
            lines.append(f"  Every problem of the platform's bank is an item of `{name}`"
                         + (DEMO_NOTE if name == "math500" else "") + ".")  # fmt: skip
    return [*lines, ""]


def _text(row) -> str:
    row = getattr(row, "row", row)  # a stepwise (PRM) export's row wraps the trace's row
    if isinstance(row, rollouts.SampleRow):
        return row.text
    if isinstance(row, records.RawRow):
        return f"{row.trace.thought}\n{row.trace.solution}"
    return "\n".join(records.texts(row))


def deduplicated(rows: Iterable) -> tuple[list, int]:
    """The rows (of one problem) with near-duplicates of an earlier one left out, and how
    many were left out."""
    sketch, kept, dropped = Sketch(), [], 0
    for number, row in enumerate(rows):
        minhash = signature(_text(row))
        if sketch.similar(minhash):
            dropped += 1
            continue
        sketch.add(number, minhash)
        kept.append(row)
    return kept, dropped
