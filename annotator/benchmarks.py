"""Registering a benchmark set from JSONL or CSV, then marking the problems it contaminates.

Every line is checked first (each bad one named with its line), and nothing is stored
unless all are good, as the problem import does.
"""

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from . import problem_import as files
from .decontamination import normalize, problems_decontaminate, text_hash
from .models import Benchmark, BenchmarkItem
from .problem_import import ImportFileError, RowError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
ID_FIELDS = ("unique_id", "id", "problem_id", "ID")  # an item's id, when the file has one


@dataclass
class BenchmarkReport:
    name: str = ""
    items: int = 0
    errors: list[RowError] = field(default_factory=list)
    contaminated: Counter = field(default_factory=Counter)  # problems marked, per benchmark
    replaced: bool = False


def _csv_records(path: Path, name: str, text_field: str):
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        if text_field not in header:
            raise ImportFileError(
                f"The CSV header of {name} has no column '{text_field}' (it has "
                f"{', '.join(header) or 'none'}); name the problem text's column with --field."
            )
        start = reader.line_num + 1
        for record in files._csv_rows(reader):
            if None in record:
                yield start, RowError(start, None, "more values than header columns")
            elif any((value or "").strip() for value in record.values()):
                yield start, record
            start = reader.line_num + 1


def _item(line: int, record: dict, text_field: str) -> tuple[str, str] | RowError:
    value = record.get(text_field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return RowError(line, text_field, "missing or empty")
    if not isinstance(value, str):
        return RowError(line, text_field, f"expected text, got {type(value).__name__}")
    if "\x00" in value:
        return RowError(line, text_field, "contains a NUL character, which cannot be stored")
    if len(value) > files.MAX_TEXT_LENGTH:
        return RowError(line, text_field, f"longer than {files.MAX_TEXT_LENGTH} characters")
    external_id = next((str(record[k]) for k in ID_FIELDS if record.get(k) not in (None, "")), "")
    return value, external_id[: files.MAX_ID_LENGTH]


def benchmark_read(
    path: Path, *, text_field: str = "problem", fmt: str | None = None, file_name: str | None = None
) -> tuple[list[BenchmarkItem], list[RowError]]:
    """The file's items (unsaved) and every bad line; ImportFileError if it cannot be read."""
    name = file_name or path.name
    fmt = fmt or files.detect_format(Path(name))
    files._check_readable(path, name)
    if fmt == "csv":
        csv.field_size_limit(max(csv.field_size_limit(), files.CSV_FIELD_LIMIT))
        records = _csv_records(path, name, text_field)
    else:
        records = files._jsonl_records(path, name)
    items, errors = [], []
    for line, record in records:
        result = record if isinstance(record, RowError) else _item(line, record, text_field)
        if isinstance(result, RowError):
            errors.append(result)
            continue
        text, external_id = result
        normalized = normalize(text)
        items.append(
            BenchmarkItem(
                line=line,
                external_id=external_id,
                text=text,
                normalized=normalized,
                normalized_hash=text_hash(normalized),
            )
        )
    if not items and not errors:
        raise ImportFileError(f"{name} holds no rows: there is no benchmark item to add.")
    return items, errors


def benchmark_add(
    *,
    path: Path,
    name: str,
    text_field: str = "problem",
    fmt: str | None = None,
    replace: bool = False,
    file_name: str | None = None,
) -> BenchmarkReport:
    """Register the benchmark (or replace its items) and mark every problem it overlaps.

    With bad lines nothing is stored and the report lists them. A name already registered
    is refused unless ``replace``.
    """
    name = name.strip()
    if not NAME.match(name):
        raise ImportFileError(
            f"Benchmark name {name!r}: use letters, digits, '.', '_' or '-' (e.g. aime24), "
            "at most 100 characters, no comma."
        )
    existing = Benchmark.objects.filter(name=name).first()
    if existing and not replace:
        raise ImportFileError(
            f"A benchmark named '{name}' is registered already; pass --replace to load its "
            "items again from this file."
        )
    items, errors = benchmark_read(path, text_field=text_field, fmt=fmt, file_name=file_name)
    report = BenchmarkReport(name=name, items=len(items), errors=errors)
    if errors:
        return report
    with transaction.atomic():
        if existing:
            existing.items.all().delete()
            existing.file_name, existing.text_field = file_name or path.name, text_field
            existing.save()
        benchmark = existing or Benchmark.objects.create(
            name=name, file_name=file_name or path.name, text_field=text_field
        )
        for item in items:
            item.benchmark = benchmark
        BenchmarkItem.objects.bulk_create(items, batch_size=2000)
        report.contaminated = problems_decontaminate(benchmarks=[benchmark])
    report.replaced = existing is not None
    return report
