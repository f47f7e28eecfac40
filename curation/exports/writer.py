"""Writing an export: split files, dataset_info.json, manifest.json and a dataset card.

Files are written under temporary names in the output folder and renamed into place only
when everything succeeded, so an interrupted export leaves no half-written file behind.
The same database and options give byte-identical files (the manifest's time aside).
"""

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from . import hygiene, notices, prm, records

PLATFORM_VERSION = "0.1.0"
DATASET_NAME = "journey"


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


def _dataset_info(fmt: str, files: list[dict]) -> dict:
    if fmt == "messages":
        spec = {"formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"}}  # fmt: skip
    elif fmt == "sharegpt":
        spec = {"formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                         "assistant_tag": "gpt"}}  # fmt: skip
    elif fmt == "alpaca":
        spec = {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input",
                "response": "output", "system": "system"}}  # fmt: skip
    else:  # dpo
        spec = {"formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "conversations", "chosen": "chosen",
                            "rejected": "rejected", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                         "assistant_tag": "gpt"}}  # fmt: skip
    return {f"{DATASET_NAME}_{f['split']}": {"file_name": f["name"], **spec} for f in files}


def check_labels(fmt: str, labels: str, neutral: str) -> None:
    """Refuse step-label options a step format cannot take (other formats ignore them)."""
    if labels not in prm.LABELS:
        raise ExportError(f"Unknown labels {labels!r}; choose one of {', '.join(prm.LABELS)}.")
    if neutral not in prm.NEUTRAL:
        raise ExportError(f"--neutral is {' or '.join(prm.NEUTRAL)}, not {neutral!r}.")


def _card(fmt: str, style: str, manifest: dict) -> str:
    lines = [
        f"# {DATASET_NAME}: journey-learning traces",
        "",
        "Long reasoning traces expanded by an LLM from human records of how problems were "
        "solved (attempts, reflections, corrections, common-sense notes), then reviewed.",
        "",
        f"- Format: `{fmt}`; "
        + (
            f"labels: `{manifest.get('labels')}`"
            if fmt in prm.FORMATS
            else f"thought style: `{style}`"
        ),
        f"- Records: {', '.join(f'{k} {v}' for k, v in manifest['counts'].items())}",
        f"- Prompt versions: {', '.join(manifest['prompt_versions']) or 'none'}",
        f"- Models: {', '.join(manifest['models']) or 'none'}",
        "- Simulated traces included: "
        + ("yes" if manifest["filters"].get("include_simulated") else "no"),
        "- Annotators and reviewers are pseudonymized.",
        "- Checksums and the exact options are in manifest.json.",
        "",
    ]
    if manifest.get("dedup"):
        lines.append(f"- Near-duplicate traces of the same problem left out: "
                     f"{manifest['dedup']['dropped']:,} (Jaccard of word shingles at least "
                     f"{manifest['dedup']['threshold']}).")  # fmt: skip
        lines.append("")
    lines += hygiene.card_lines(manifest.get("contamination", {}))
    if manifest["warnings"]:
        lines += ["## Warnings", "", *(f"- {warning}" for warning in manifest["warnings"]), ""]
    if style == "reasoning-field" and fmt in READING_REASONING:
        lines += _reasoning_usage(fmt, manifest["files"][0]["name"])
    if fmt in prm.FORMATS:
        lines += prm.card_usage(fmt, manifest["files"][0]["name"], manifest["labels"],
                                manifest["neutral"])  # fmt: skip
    return "\n".join(lines)


# Where the thought and the prompt are in a record of each format, for the card's example.
READING_REASONING = {
    "messages": ("row['messages'][-1]['reasoning']", "row['messages'][-1]['content']",
                 '[m for m in row["messages"] if m["role"] != "assistant"]'),
    "sharegpt": ("row['reasoning']", "row['conversations'][-1]['value']",
                 '[{"role": "user", "content": row["conversations"][0]["value"]}]'),
    "alpaca": ("row['reasoning']", "row['output']",
               '[{"role": "user", "content": row["instruction"]}]'),
}  # fmt: skip


def _reasoning_usage(fmt: str, file_name: str) -> list[str]:
    """reasoning-field is for Hugging Face datasets and TRL: LLaMA-Factory has no column
    for it, so the card shows how to read the thought and put it where a model wants it."""
    thought, solution, prompt = READING_REASONING[fmt]
    return [
        "## The reasoning field",
        "",
        "The thought is in its own `reasoning` key and the solution alone is the answer. "
        "LLaMA-Factory has no column for such a key (it would train on the solution only), "
        "so there is no dataset_info.json: load the files with Hugging Face `datasets` and "
        "write the thought the way your model's chat template expects, e.g. for TRL's "
        "`SFTTrainer` (prompt-completion, `<think>` tags):",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'data = load_dataset("json", data_files="{file_name}", split="train")',
        "",
        "",
        "def to_prompt_completion(row):",
        f'    answer = f"<think>\\n{{{thought}}}\\n</think>\\n\\n{{{solution}}}"',
        "    return {",
        f'        "prompt": {prompt},',
        '        "completion": [{"role": "assistant", "content": answer}],',
        "    }",
        "",
        "",
        "data = data.map(to_prompt_completion, remove_columns=data.column_names)",
        "```",
        "",
    ]


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
) -> ExportResult:
    """Write the export; include_hint says how to include simulated traces where it runs.
    With ``dedup`` near-duplicate traces of one problem are written once."""
    if fmt not in records.FORMATS:
        raise ExportError(f"Unknown format {fmt!r}; choose one of {', '.join(records.FORMATS)}.")
    check_style(fmt, style)
    stepwise = fmt in prm.FORMATS
    if stepwise:
        check_labels(fmt, labels, neutral)
    splits = splits or {"train": 1.0}
    filters = dict(filters or {})
    output = Path(output)
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
    if dpo:
        filters["status"] = "any"
    traces = records.export_queryset(**filters)
    total = traces.count()
    if total == 0:
        left = notices.left_out(filters, matched=0)
        why = "no trace matches these filters"
        raise ExportError(notices.nothing_to_export(why, left, include=include_hint))

    temporary = {name: output / f".{name}.jsonl.partial" for name in splits}
    handles = {name: path.open("wb") for name, path in temporary.items()}
    hashes = {name: hashlib.sha256() for name in splits}
    counts = dict.fromkeys(splits, 0)
    problems, last_problem = dict.fromkeys(splits, 0), dict.fromkeys(splits)
    prompts, models, endpoints = set(), set(), set()
    kept, dropped = hygiene.Kept(filters), 0
    unlabelled = 0
    try:
        pending_problem, group = None, []

        def write(split: str, record: dict, problem: str) -> None:
            line = _dump(record)
            handles[split].write(line)
            hashes[split].update(line)
            counts[split] += 1
            kept.written(problem)
            if problem != last_problem[split]:  # rows come ordered by problem
                problems[split] += 1
                last_problem[split] = problem

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
            split = split_of(pending_problem, splits, seed)
            if stepwise:
                for row in unique(group):
                    one = (prm.prm_record(row, labels=labels, neutral=neutral) if fmt == "prm"
                           else prm.prm800k_record(row, labels=labels))  # fmt: skip
                    if one is None:
                        unlabelled += 1
                    else:
                        write(split, one, pending_problem)
                return
            if not dpo:
                for row in unique(group):
                    write(split, records.record(row, fmt=fmt, style=style, system=system),
                          pending_problem)  # fmt: skip
                return
            chosen = unique([row for row in group if row.status == "approved"])
            for bad in unique([row for row in group if row.status == "rejected"]):
                if chosen:
                    best = min(chosen, key=lambda row: (row.rank or 99, row.pk))
                    pair = records.preference_record(best, bad, style=style, system=system)
                    write(split, pair, pending_problem)

        with transaction.atomic():  # so that the server-side cursor needs no WITH HOLD
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
        for handle in handles.values():
            handle.close()
        if sum(counts.values()) == 0:
            why = "no problem has both an approved and a rejected trace to pair" if dpo else ""
            if stepwise:
                why = f"none of the {total:,} traces has a step with {labels} ratings"
            left = notices.left_out(filters, matched=total)
            raise ExportError(notices.nothing_to_export(why or "no record was written", left,
                                                        include=include_hint))  # fmt: skip

        # An empty JSONL file makes datasets.load_dataset fail: an empty split is left out.
        empty = [name for name in splits if not counts[name]]
        warnings = [notices.empty_split(name, problems) for name in empty]
        if unlabelled:
            warnings.append(f"{unlabelled:,} of {total:,} traces have no step with {labels} "
                            "ratings and are left out.")  # fmt: skip
        for_llama_factory = fmt != "raw" and style != "reasoning-field" and not stepwise
        if fmt != "raw" and not for_llama_factory:
            warnings.append(notices.REASONING_FIELD)
        files = [
            {"split": name, "name": f"{name}.jsonl", "records": counts[name],
             "bytes": temporary[name].stat().st_size, "sha256": hashes[name].hexdigest()}
            for name in splits if counts[name]
        ]  # fmt: skip
        contamination = hygiene.contamination_summary(
            hygiene.left_out_by_benchmark(filters), kept.counts, hygiene.allowed(filters)
        )
        manifest = {
            "format": fmt, "style": style, "system": system, "splits": splits, "seed": seed,
            "filters": {k: notices.plain(v) for k, v in sorted(filters.items())},
            "counts": counts, "files": files, "empty_splits": empty, "warnings": warnings,
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
        extra = {"manifest.json": json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                 "README.md": _card(fmt, style, manifest)}  # fmt: skip
        if for_llama_factory:
            extra["dataset_info.json"] = json.dumps(_dataset_info(fmt, files), indent=2) + "\n"
        elif stepwise:
            info = prm.dataset_info(fmt, files, DATASET_NAME)
            extra["dataset_info.json"] = json.dumps(info, indent=2) + "\n"
        for name, text in extra.items():
            (output / f".{name}.partial").write_text(text, encoding="utf-8")
        for file in files:
            temporary[file["split"]].replace(output / file["name"])
        for name in extra:
            (output / f".{name}.partial").replace(output / name)
        written = {output / file["name"] for file in files} | {output / name for name in extra}
        for stale in set(targets) - written:  # left by the export --force replaced
            stale.unlink(missing_ok=True)
        return ExportResult(counts=counts, files=files, manifest=manifest, warnings=warnings)
    finally:
        for handle in handles.values():
            handle.close()
        for path in [*temporary.values(), *(output / f".{n}.partial" for n in
                     ("manifest.json", "README.md", "dataset_info.json"))]:  # fmt: skip
            path.unlink(missing_ok=True)
