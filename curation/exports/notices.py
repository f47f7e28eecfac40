"""What an export tells the person who ran it when the result is not what they expected.

Why nothing matched (how many traces of the review status the simulated flag and the
filters left out) and which split came out empty: a person facing an empty export needs
the numbers and the option that changes them, not a bare "nothing to export".
"""

import json
from datetime import UTC, date, datetime, time
from typing import NamedTuple

from . import records

# The words for a status in "Of 7 approved traces"; "any" covers every finished trace.
STATUS_WORDS = {"approved": "approved", "rejected": "rejected", "pending": "pending",
                "any": "finished"}  # fmt: skip
COMMAND_INCLUDE = "pass --include-simulated"
# Filters that are not "the other filters" of the explanation.
NOT_A_FILTER = ("status", "include_simulated", "allow_contaminated")


class LeftOut(NamedTuple):
    status: str
    with_status: int  # traces with this review status, simulated or not, before any filter
    simulated: int  # simulated traces that every other filter kept
    by_filters: int  # the rest: left out by the filters
    filters: dict  # the filters given, by name
    contaminated: int = 0  # what the filters kept, left out for their benchmarks
    benchmarks: dict | None = None  # traces left out per benchmark name


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _given(key: str, value) -> bool:
    """A filter someone set: level 0 is a level, a zero minimum of tokens is no minimum."""
    if key == "level":
        return value is not None
    return value not in (None, "", False, 0)


def plain(value):
    """A filter's value as JSON keeps it: its own type, a day as 2026-01-31."""
    if isinstance(value, datetime):
        utc = value.astimezone(UTC)
        return utc.date().isoformat() if utc.time() == time.min else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value


def left_out(filters: dict, *, matched: int) -> LeftOut:
    """Count what these filters left out of the traces with their review status."""
    from .hygiene import left_out_by_benchmark

    status = filters.get("status", "approved")
    query = records.export_queryset
    with_status = query(status=status, include_simulated=True, decontaminate=False).count()
    by_rules = query(**filters, decontaminate=False).count()  # before the benchmarks' rule
    with_simulated = by_rules
    if not filters.get("include_simulated"):
        with_simulated = query(**{**filters, "include_simulated": True}, decontaminate=False)
        with_simulated = with_simulated.count()
    given = {k: v for k, v in filters.items() if k not in NOT_A_FILTER and _given(k, v)}
    benchmarks = dict(left_out_by_benchmark(filters)) if by_rules > matched else {}
    return LeftOut(status, with_status, with_simulated - by_rules, with_status - with_simulated,
                   given, by_rules - matched, benchmarks)  # fmt: skip


def explain(left: LeftOut, *, include: str = COMMAND_INCLUDE) -> str:
    """'Of 7 approved traces, 7 are simulated ...': include says how to include simulated."""
    word = STATUS_WORDS.get(left.status, left.status)
    if not left.with_status:
        return f"There is no {word} trace yet."
    parts = []
    if left.simulated:
        verb = "is" if left.simulated == 1 else "are"
        parts.append(f"{left.simulated:,} {verb} simulated and left out ({include} to export "
                     f"{'it' if left.simulated == 1 else 'them'})")  # fmt: skip
    if left.contaminated:
        names = ", ".join(f"{name} {count:,}" for name, count in (left.benchmarks or {}).items())
        first = next(iter(left.benchmarks or {"NAME": 0}))
        parts.append(f"{left.contaminated:,} {'is' if left.contaminated == 1 else 'are'} of "
                     f"problems in a registered benchmark and left out ({names}; allow "
                     f"{first} to export them: --allow-contaminated {first}, or Allow "
                     "benchmarks on the export page)")  # fmt: skip
    if left.by_filters:
        named = ", ".join(f"{k}={json.dumps(plain(v))}" for k, v in left.filters.items())
        parts.append(f"{left.by_filters:,} {'is' if left.by_filters == 1 else 'are'} left out "
                     f"by the filters{f' ({named})' if named else ''}")  # fmt: skip
    if not parts:
        return ""
    return f"Of {_plural(left.with_status, word + ' trace')}, {' and '.join(parts)}."


def nothing_to_export(why: str, left: LeftOut | None, *, include: str = COMMAND_INCLUDE) -> str:
    explained = explain(left, include=include) if left else ""
    return " ".join(filter(None, [f"Nothing to export: {why}.", explained]))


def no_samples(filters: dict, campaigns: list[int], *, traces: bool,
               include: str = COMMAND_INCLUDE) -> str:  # fmt: skip
    """Why no rollout sample (and, with traces, no trace either) matched: how many verified
    samples the campaigns have, and how many of them are simulated."""
    from .rollouts import samples_queryset

    why = "no trace and no verified rollout sample match" if traces else (
        "no verified rollout sample matches")  # fmt: skip
    base = {"include_simulated": True, "allow_contaminated": filters.get("allow_contaminated")}
    verified = samples_queryset(base, campaigns=campaigns, decontaminate=False).count()
    where = "these campaigns" if campaigns else "any campaign"
    parts = [f"Nothing to export: {why} these filters."]
    if not verified:
        parts.append(f"There is no verified (correct or incorrect) sample in {where} yet.")
        return " ".join(parts)
    unfiltered = {**filters, "include_simulated": True}
    simulated = samples_queryset(unfiltered, campaigns=campaigns).count()
    if simulated and not filters.get("include_simulated"):
        parts.append(f"Of {_plural(verified, 'verified sample')} in {where}, {simulated:,} "
                     f"{'is' if simulated == 1 else 'are'} simulated and left out ({include} "
                     "to export them).")  # fmt: skip
    else:
        parts.append(f"Of {_plural(verified, 'verified sample')} in {where}, the problem "
                     "filters or the benchmarks' rule left out every one.")  # fmt: skip
    return " ".join(parts)


def no_rollout_record(fmt: str, samples: int, *, traces: bool) -> str:
    """Why samples were read but no record was written."""
    if fmt == "dpo":
        why = (f"of {_plural(samples, 'verified sample')}, no problem has both a correct and "
               "an incorrect sample of the same campaign to pair")  # fmt: skip
    else:
        why = f"none of the {_plural(samples, 'verified sample')} is correct"
    return f"no trace to pair or export, and {why}" if traces else why


def source_gave_nothing(source: str, filters: dict) -> str:
    if source == "traces":
        return ("No trace gave a record: the export holds rollout samples only (see the "
                "trace filters and --status).")  # fmt: skip
    return ("No rollout sample gave a record: the export holds traces only (see --campaign "
            "and the samples' verdicts).")  # fmt: skip


TRL_PAIRS = (
    "dataset_info.json is not written for --pair-layout trl: LLaMA-Factory reads a pair's "
    "chosen and rejected as single turns, not message lists. Load these files with Hugging "
    "Face datasets for TRL's DPOTrainer, or leave --pair-layout out for LLaMA-Factory."
)


def empty_split(name: str, problems: dict[str, int]) -> str:
    """Why a split has no record: the split is by problem, and too few problems fell in it."""
    total = sum(problems.values())
    landed = ", ".join(f"{split} {count}" for split, count in problems.items() if count)
    return (f"Split '{name}' is empty: it received none of the {_plural(total, 'problem')} "
            f"exported (a split is by problem; problems per split: {landed or 'none'}). "
            f"It is left out of the files and dataset_info.json; with more problems, another "
            f"seed or other fractions it would receive some.")  # fmt: skip


REASONING_FIELD = (
    "dataset_info.json is not written for the reasoning-field style: LLaMA-Factory has no "
    "column for a separate reasoning key and would train on the solution alone. Load these "
    "files with Hugging Face datasets (TRL), or export in the think-tags or still style for "
    "LLaMA-Factory."
)
