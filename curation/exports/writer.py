"""Writing an export: split files, dataset_info.json, manifest.json and a dataset card.

Files are written under temporary names in the output folder and renamed into place only
when everything succeeded, so an interrupted export leaves no half-written file behind.
The same database and options give byte-identical files (the manifest's time aside).
"""

import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from . import cards, hygiene, notices, prm, records, rollouts

PLATFORM_VERSION = "0.1.0"
DATASET_NAME = cards.DATASET_NAME


class ExportError(Exception):
    """A problem the person running the export can fix; the message says how."""


@dataclass
class ExportResult:
    counts: dict[str, int] = field(default_factory=dict)
    files: list[dict] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # also in the manifest


def parse_day(value, option: str):
    """'2026-01-31' -> midnight UTC of that day; ExportError when it is not a date."""
    from django.utils.dateparse import parse_date

    if not value:
        return None
    day = parse_date(str(value))
    if day is None:
        raise ExportError(f"{option} must be a date like 2026-01-31, got {value!r}.")
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def parse_splits(text: str) -> dict[str, float]:
    """'train=0.95,test=0.05' -> {'train': 0.95, 'test': 0.05}, checked."""
    splits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, share = part.partition("=")
        try:
            value = float(share)
        except ValueError as exc:
            raise ExportError(f"--split: {part!r} is not name=fraction.") from exc
        if not name.isidentifier() or value <= 0 or name in splits:
            raise ExportError(f"--split: {part!r} needs a unique name and a fraction above 0.")
        splits[name] = value
    if not splits or abs(sum(splits.values()) - 1) > 1e-6:
        raise ExportError("--split fractions must add up to 1, e.g. train=0.95,test=0.05.")
    return splits


def check_style(fmt: str, style: str) -> None:
    """Refuse a style the format has no place for (a pair has no reasoning key)."""
    if style not in records.STYLES:
        raise ExportError(f"Unknown style {style!r}; choose one of {', '.join(records.STYLES)}.")
    if fmt in prm.FORMATS and style == "reasoning-field":
        raise ExportError(f"--style does not apply to {fmt}: its steps are the thought's "
                          "paragraphs; leave --style out.")  # fmt: skip
    if fmt == "dpo" and style == "reasoning-field":
        raise ExportError("--style reasoning-field does not fit dpo pairs (chosen and rejected "
                          "have no reasoning key): use think-tags or still.")  # fmt: skip


def split_of(problem_key: str, splits: dict[str, float], seed: int) -> str:
    """The split a problem belongs to: a hash, so every trace of a problem lands together."""
    digest = hashlib.sha256(f"{seed}:{problem_key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for name, share in splits.items():
        total += share
        if point < total:
            return name
    return name


def _dump(record: dict) -> bytes:
    """One JSONL line, UTF-8: encoded once, for both the file and its checksum."""
    return (json.dumps(record, ensure_ascii=False, cls=DjangoJSONEncoder) + "\n").encode()


def check_sources(fmt: str, sources: tuple[str, ...], *, pair_layout: str,
                  pairs_per_problem: int, samples_per_problem: int, pick: str) -> None:  # fmt: skip
    """Refuse what rollout samples cannot be exported as, naming the option."""
    if pair_layout not in records.PAIR_LAYOUTS:
        raise ExportError(f"--pair-layout is {' or '.join(records.PAIR_LAYOUTS)}, "
                          f"not {pair_layout!r}.")  # fmt: skip
    if "rollouts" not in sources:
        return
    if fmt not in rollouts.FORMATS:
        raise ExportError(f"--format {fmt} does not apply to --source rollouts (it reads "
                          "traces: their stored fields or rated steps); rollout samples "
                          f"export as {', '.join(rollouts.FORMATS)}.")  # fmt: skip
    if pick not in rollouts.PICKS:
        raise ExportError(f"--pick is {' or '.join(rollouts.PICKS)}, not {pick!r}.")
    for option, value in (("--pairs-per-problem", pairs_per_problem),
                          ("--samples-per-problem", samples_per_problem)):  # fmt: skip
        if not isinstance(value, int) or value < 1:
            raise ExportError(f"{option} must be a whole number of at least 1, got {value!r}.")


class _Files:
    """The split files being written: one temporary file, checksum and count per split, and
    which problems each split received (a split is by problem, whatever the record's source)."""

    def __init__(self, output: Path, splits: dict[str, float], seed: int, kept: hygiene.Kept):
        self.splits, self.seed, self.kept = splits, seed, kept
        self.temporary = {name: output / f".{name}.jsonl.partial" for name in splits}
        self.handles = {name: path.open("wb") for name, path in self.temporary.items()}
        self.hashes = {name: hashlib.sha256() for name in splits}
        self.counts = dict.fromkeys(splits, 0)
        self.problems: dict[str, set] = {name: set() for name in splits}

    def write(self, record: dict, problem: str) -> None:
        split = split_of(problem, self.splits, self.seed)
        line = _dump(record)
        self.handles[split].write(line)
        self.hashes[split].update(line)
        self.counts[split] += 1
        self.problems[split].add(problem)
        self.kept.written(problem)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()

    def problem_counts(self) -> dict[str, int]:
        return {name: len(problems) for name, problems in self.problems.items()}

    def listing(self) -> list[dict]:
        return [
            {"split": name, "name": f"{name}.jsonl", "records": self.counts[name],
             "bytes": self.temporary[name].stat().st_size, "sha256": self.hashes[name].hexdigest()}
            for name in self.splits if self.counts[name]
        ]  # fmt: skip


def check_labels(fmt: str, labels: str, neutral: str) -> None:
    """Refuse step-label options a step format cannot take (other formats ignore them)."""
    if labels not in prm.LABELS:
        raise ExportError(f"Unknown labels {labels!r}; choose one of {', '.join(prm.LABELS)}.")
    if neutral not in prm.NEUTRAL:
        raise ExportError(f"--neutral is {' or '.join(prm.NEUTRAL)}, not {neutral!r}.")


def dataset_export(
    *,
    output: Path,
    fmt: str,
    style: str = "think-tags",
    system: str = "",
    splits: dict[str, float] | None = None,
    seed: int = 0,
    force: bool = False,
    filters: dict | None = None,
    progress: Callable[[int, int], None] | None = None,
    include_hint: str = notices.COMMAND_INCLUDE,
    dedup: bool = False,
    labels: str = "human",
    neutral: str = "negative",
    sources: tuple[str, ...] = ("traces",),
    campaigns: str = "",
    pairs_per_problem: int = rollouts.PAIRS_PER_PROBLEM,
    samples_per_problem: int = rollouts.SAMPLES_PER_PROBLEM,
    pick: str = "shortest",
    pair_layout: str = "llama-factory",
) -> ExportResult:
    """Write the export; include_hint says how to include simulated traces where it runs.
    With ``dedup`` near-duplicate traces of one problem are written once. ``sources`` are
    reviewed traces, rollout samples (of ``campaigns``, names or ids; default all) or both."""
    if fmt not in records.FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(records.FORMATS)}.")
    check_style(fmt, style)
    if not sources or not set(sources) <= set(rollouts.SOURCES):
        raise ExportError(f"--source is traces, rollouts or traces,rollouts, not {sources!r}.")
    sources = tuple(source for source in rollouts.SOURCES if source in sources)
    check_sources(fmt, sources, pair_layout=pair_layout, pick=pick,
                  pairs_per_problem=pairs_per_problem,
                  samples_per_problem=samples_per_problem)  # fmt: skip
    with_traces, with_rollouts = "traces" in sources, "rollouts" in sources
    if campaigns and not with_rollouts:
        raise ExportError("--campaign applies to rollout samples: add --source rollouts (or "
                          "traces,rollouts), or leave --campaign out.")  # fmt: skip
    stepwise = fmt in prm.FORMATS
    if stepwise:
        check_labels(fmt, labels, neutral)
    splits = splits or {"train": 1.0}
    filters = dict(filters or {})
    output = Path(output)
    try:
        chosen_campaigns = rollouts.campaigns_named(campaigns) if with_rollouts else []
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    targets = [output / f"{name}.jsonl" for name in splits] + [
        output / name for name in ("manifest.json", "dataset_info.json", "README.md")
    ]
    existing = [path.name for path in targets if path.exists()]
    if existing and not force:
        raise ExportError(f"{output} already holds {', '.join(existing)}; pass --force to replace.")
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"Cannot create {output}: {exc.strerror}.") from exc
    if not os.access(output, os.W_OK):
        raise ExportError(f"Cannot write to {output}: permission denied.")

    dpo = fmt == "dpo"
    if dpo and with_traces:
        filters["status"] = "any"
    total = samples_total = 0
    if with_traces:
        traces = records.export_queryset(**filters)
        total = traces.count()
        if total == 0 and not with_rollouts:
            left = notices.left_out(filters, matched=0)
            why = "no trace matches these filters"
            raise ExportError(notices.nothing_to_export(why, left, include=include_hint))
    campaign_ids = [campaign.pk for campaign in chosen_campaigns]
    if with_rollouts:
        try:
            samples = rollouts.samples_queryset(filters, campaigns=campaign_ids)
        except ValueError as exc:
            raise ExportError(str(exc)) from exc
        samples_total = samples.count()
        if samples_total == 0 and total == 0:
            raise ExportError(notices.no_samples(filters, campaign_ids, traces=with_traces,
                                                 include=include_hint))  # fmt: skip

    kept = hygiene.Kept(filters)
    files = _Files(output, splits, seed, kept)
    prompts, models, endpoints, campaigns_written = set(), set(), set(), set()
    dropped = unlabelled = 0
    written = dict.fromkeys(sources, 0)
    keys = rollouts.mixed_keys(fmt) if len(sources) == 2 else None
    try:
        pending_problem, group = None, []

        def write(record: dict, problem: str) -> None:
            if with_rollouts:
                record = rollouts.sourced(record, "trace", keys)
            files.write(record, problem)
            written["traces"] += 1

        def unique(rows: list) -> list:
            nonlocal dropped
            if not dedup or len(rows) < 2:
                return rows
            rows, left = hygiene.deduplicated(rows)
            dropped += left
            return rows

        def flush() -> None:
            """Write the records of one problem's traces (rows come ordered by problem)."""
            nonlocal unlabelled
            if not group:
                return
            if stepwise:
                for row in unique(group):
                    one = (prm.prm_record(row, labels=labels, neutral=neutral) if fmt == "prm"
                           else prm.prm800k_record(row, labels=labels))  # fmt: skip
                    if one is None:
                        unlabelled += 1
                    else:
                        write(one, pending_problem)
                return
            if not dpo:
                for row in unique(group):
                    write(records.record(row, fmt=fmt, style=style, system=system),
                          pending_problem)  # fmt: skip
                return
            chosen = unique([row for row in group if row.status == "approved"])
            for bad in unique([row for row in group if row.status == "rejected"]):
                if chosen:
                    best = min(chosen, key=lambda row: (row.rank or 99, row.pk))
                    pair = records.preference_record(best, bad, style=style, system=system,
                                                     layout=pair_layout)  # fmt: skip
                    write(pair, pending_problem)

        with transaction.atomic():  # so that the server-side cursor needs no WITH HOLD
            if total:
                rows = (prm.prm_rows(traces, labels=labels) if stepwise
                        else records.iterate(traces, fmt=fmt))  # fmt: skip
                for done, row in enumerate(rows, start=1):
                    key = row.problem_key
                    prompts.add(row.prompt_version)
                    models.add(row.model)
                    endpoints.add(row.endpoint)
                    if key != pending_problem:
                        flush()
                        pending_problem, group = key, []
                    group.append(row)
                    if progress:
                        progress(done, total)
                flush()
            if samples_total:
                made = rollouts.export_records(
                    rollouts.rows(samples), fmt=fmt, style=style, system=system, seed=seed,
                    pairs_per_problem=pairs_per_problem, samples_per_problem=samples_per_problem,
                    pick=pick, layout=pair_layout, unique=unique,
                )  # fmt: skip
                for problem, record, used in made:
                    files.write(rollouts.sourced(record, "rollout", keys), problem)
                    written["rollouts"] += 1
                    for sample in used:
                        prompts.add(sample.prompt_version)
                        models.add(sample.model)
                        endpoints.add(sample.endpoint)
                        campaigns_written.add(sample.campaign_name)
        files.close()
        counts = files.counts
        if sum(counts.values()) == 0:
            why = "no problem has both an approved and a rejected trace to pair" if dpo else ""
            if stepwise:
                why = f"none of the {total:,} traces has a step with {labels} ratings"
            if with_rollouts:
                why = notices.no_rollout_record(fmt, samples_total, traces=with_traces)
            left = notices.left_out(filters, matched=total) if with_traces else None
            raise ExportError(notices.nothing_to_export(why or "no record was written", left,
                                                        include=include_hint))  # fmt: skip

        # An empty JSONL file makes datasets.load_dataset fail: an empty split is left out.
        empty = [name for name in splits if not counts[name]]
        warnings = [notices.empty_split(name, files.problem_counts()) for name in empty]
        if unlabelled:
            warnings.append(f"{unlabelled:,} of {total:,} traces have no step with {labels} "
                            "ratings and are left out.")  # fmt: skip
        if len(sources) == 2:
            warnings += [notices.source_gave_nothing(source, filters) for source, count
                         in written.items() if not count]  # fmt: skip
        trl = dpo and pair_layout == "trl"
        for_llama_factory = fmt != "raw" and style != "reasoning-field" and not stepwise
        for_llama_factory = for_llama_factory and not trl
        if trl:
            warnings.append(notices.TRL_PAIRS)
        elif fmt != "raw" and not for_llama_factory:
            warnings.append(notices.REASONING_FIELD)
        listing = files.listing()
        left = hygiene.left_out_by_benchmark(filters) if with_traces else Counter()
        if with_rollouts:
            left += hygiene.samples_left_out_by_benchmark(filters, campaign_ids)
        contamination = hygiene.contamination_summary(left, kept.counts, hygiene.allowed(filters))
        shown = filters if with_traces else {k: v for k, v in filters.items()
                                             if k in rollouts.SAMPLE_FILTERS}  # fmt: skip
        manifest = {
            "format": fmt, "style": style, "system": system, "splits": splits, "seed": seed,
            "filters": {k: notices.plain(v) for k, v in sorted(shown.items())},
            "counts": counts, "files": listing, "empty_splits": empty, "warnings": warnings,
            "prompt_versions": sorted(prompts),
            "models": sorted(models), "endpoints": sorted(endpoints),
            "platform_version": PLATFORM_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "contamination": contamination,
        }  # fmt: skip
        if dedup:
            manifest["dedup"] = {"dropped": dropped, "threshold": settings.NEAR_DUPLICATE_THRESHOLD}
        manifest["filters"]["include_simulated"] = bool(filters.get("include_simulated"))
        if stepwise:
            manifest.update(labels=labels, neutral=neutral, unlabelled=unlabelled)
        if dpo and pair_layout != "llama-factory":
            manifest["pair_layout"] = pair_layout
        if with_rollouts:
            manifest["sources"] = {source.removesuffix("s"): count
                                   for source, count in written.items()}  # fmt: skip
            manifest["rollouts"] = {
                "campaigns": [campaign.name for campaign in chosen_campaigns] or "all",
                "campaigns_written": sorted(campaigns_written),
                "samples_read": samples_total,
                **({"pairs_per_problem": pairs_per_problem} if dpo else
                   {"samples_per_problem": samples_per_problem, "pick": pick}),
            }  # fmt: skip
        extra = {"manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                 "README.md": cards.card(fmt, style, manifest)}  # fmt: skip
        if for_llama_factory:
            info = cards.dataset_info(fmt, listing)
            extra["dataset_info.json"] = json.dumps(info, indent=2) + "\n"
        elif stepwise:
            info = prm.dataset_info(fmt, listing, DATASET_NAME)
            extra["dataset_info.json"] = json.dumps(info, indent=2) + "\n"
        for name, text in extra.items():
            (output / f".{name}.partial").write_text(text, encoding="utf-8")
        for file in listing:
            files.temporary[file["split"]].replace(output / file["name"])
        for name in extra:
            (output / f".{name}.partial").replace(output / name)
        kept_paths = {output / file["name"] for file in listing} | {output / n for n in extra}
        for stale in set(targets) - kept_paths:  # left by the export --force replaced
            stale.unlink(missing_ok=True)
        return ExportResult(counts=counts, files=listing, manifest=manifest, warnings=warnings)
    finally:
        files.close()
        for path in [*files.temporary.values(), *(output / f".{n}.partial" for n in
                     ("manifest.json", "README.md", "dataset_info.json"))]:  # fmt: skip
            path.unlink(missing_ok=True)
