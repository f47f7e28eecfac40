"""Importing a problem bank from JSONL or CSV (MATH-500 field names).

The file is read twice, line by line, so memory stays bounded whatever its size: the first
pass validates every row and collects every error; the second writes in batches, upserting
by (source, external id) so that re-importing the same file changes nothing.
"""

import csv
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import near_duplicates, problem_groups
from .decontamination import BenchmarkIndex, contaminations_replace
from .models import Benchmark, Problem

REQUIRED_FIELDS = ("problem", "answer", "unique_id")
KNOWN_FIELDS = (*REQUIRED_FIELDS, "solution", "subject", "level")
# Row field -> Problem attribute.
FIELD_MAP = {
    "problem": "statement",
    "solution": "reference_solution",
    "answer": "reference_answer",
    "subject": "subject",
    "level": "level",
}
MAX_ID_LENGTH = Problem._meta.get_field("external_id").max_length
MAX_SUBJECT_LENGTH = Problem._meta.get_field("subject").max_length
MAX_LEVEL = 32767
# One cap per text field, whatever the file's format: the statement, solution and answer.
MAX_TEXT_LENGTH = 100_000
# The csv module refuses fields over 128 KiB; it reads up to this so that a long field is
# refused by the rule above with its line, and only a larger one stops the reading.
CSV_FIELD_LIMIT = 16 * 1024 * 1024
MAX_METADATA_DEPTH = 20
FORMATS = ("jsonl", "csv")


class ImportFileError(Exception):
    """The file as a whole cannot be read (missing, empty, wrong encoding or header)."""


@dataclass(frozen=True)
class RowError:
    line: int
    field: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False
    # Rows (created or changed) whose statement is a near-duplicate of a problem already in
    # the bank, and those a registered benchmark contains, per benchmark name.
    near_duplicates: int = 0
    contaminated: Counter = field(default_factory=Counter)


@dataclass
class _Hygiene:
    """What each batch is compared with: the benchmarks and the bank's stored signatures."""

    index: BenchmarkIndex
    names: dict[int, str]
    # The stored signatures were made with other settings: regroup the whole bank.
    full: bool
    # A dry run's signatures of stale problems, made afresh and not stored.
    overlay: problem_groups.Bands | None
    written: set[int] = field(default_factory=set)  # problems whose signature was stored
    created: set[int] = field(default_factory=set)  # problems this import created

    @classmethod
    def start(cls, dry_run: bool) -> "_Hygiene":
        index = BenchmarkIndex()
        names = dict(Benchmark.objects.values_list("pk", "name"))
        full = problem_groups.signatures_made_otherwise()
        if dry_run:
            stale = problem_groups.stale_problems().values_list("pk", flat=True)
            overlay = problem_groups.Bands(problem_groups.statements_signatures(stale))
            return cls(index=index, names=names, full=full, overlay=overlay)
        # Stale signatures are made again (most often none); their groups are redone too.
        refreshed = problem_groups.signatures_refresh()
        return cls(index=index, names=names, full=full, overlay=None, written=set(refreshed))

    def check(self, rows: list["ProblemRow"], problems: list[Problem], created: list[Problem],
              report: "ImportReport", dry_run: bool) -> None:  # fmt: skip
        """Count and (unless a dry run) store the rows' contamination and signatures."""
        matches = {}
        minhashes = near_duplicates.signature_bytes([row.values["statement"] for row in rows])
        # Compared with the bank as it was: not with problems this import created.
        similar = problem_groups.neighbours(minhashes, leave_out=self.created,
                                            overlay=self.overlay)  # fmt: skip
        for row, problem, found in zip(rows, problems, similar, strict=True):
            if found - {problem.pk}:
                report.near_duplicates += 1
            overlaps = self.index.match(row.values["statement"])
            report.contaminated.update(self.names[m.benchmark_id] for m in overlaps)
            matches[problem.pk] = overlaps
        if not dry_run and problems:
            contaminations_replace(matches, benchmark_ids=self.index.ids, n=self.index.n)
            new = {problem.pk for problem in created}
            problem_groups.signatures_store(
                {problem.pk: minhash for problem, minhash in zip(problems, minhashes, strict=True)},
                new=new,
            )
            self.written.update(problem.pk for problem in problems)
            self.created |= new

    def finish(self) -> None:
        """Regroup the written problems (attached to, merging or splitting groups), or the
        whole bank when the settings changed."""
        if self.full:
            problem_groups.problem_groups_store(recompute=False)
        elif self.written:
            problem_groups.problem_groups_update(self.written)


@dataclass(frozen=True)
class ProblemRow:
    line: int
    external_id: str
    values: dict[str, Any]


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".json", ".ndjson"}:
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ImportFileError(
        f"Cannot tell the format of {path.name} from its extension; "
        "name it .jsonl or .csv, or pass --format jsonl|csv."
    )


def _check_readable(path: Path, name: str) -> None:
    if not path.exists():
        raise ImportFileError(f"No such file: {path}")
    if not path.is_file():
        raise ImportFileError(f"Not a file: {path}")
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ImportFileError(
                    f"{name} is not UTF-8 text: line {number} has the byte "
                    f"0x{raw[exc.start]:02x} at column {exc.start + 1}. "
                    "Re-save the file as UTF-8."
                ) from exc
    if path.stat().st_size == 0:
        raise ImportFileError(f"{name} is empty: there are no problems to import.")


def _jsonl_records(path: Path, name: str) -> Iterator[tuple[int, dict | RowError]]:
    with path.open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield (
                    number,
                    RowError(number, None, f"not valid JSON ({exc.msg} at column {exc.colno})"),
                )
                continue
            except RecursionError:
                yield number, RowError(number, None, "JSON nested too deeply to read")
                continue
            if not isinstance(record, dict):
                yield number, RowError(number, None, "expected a JSON object, one per line")
                continue
            yield number, record


def _csv_rows(reader: csv.DictReader) -> Iterator[dict]:
    """The reader's rows; a field past CSV_FIELD_LIMIT ends the reading with the line named."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError(
                f"line {reader.line_num + 1}: a field is larger than "
                f"{CSV_FIELD_LIMIT // (1024 * 1024)} MiB or badly quoted ({exc}); "
                "the rest of the file cannot be read."
            ) from exc


def _csv_records(path: Path, name: str) -> Iterator[tuple[int, dict | RowError]]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in REQUIRED_FIELDS if column not in header]
        if missing:
            raise ImportFileError(
                f"The CSV header of {name} lacks the column(s) {', '.join(missing)}; "
                f"expected {', '.join(KNOWN_FIELDS)}."
            )
        start = reader.line_num + 1
        for record in _csv_rows(reader):
            if None in record:
                yield start, RowError(start, None, "more values than header columns")
            elif not any((value or "").strip() for value in record.values()):
                pass
            else:
                yield start, {key: value for key, value in record.items() if value is not None}
            start = reader.line_num + 1


def _read(path: Path, fmt: str, name: str) -> Iterator[tuple[int, dict | RowError]]:
    return _jsonl_records(path, name) if fmt == "jsonl" else _csv_records(path, name)


def _unstorable(value: Any) -> str | None:
    """Why a metadata value cannot be stored: PostgreSQL keeps no NUL character, in text or
    in JSON, and deeply nested JSON is refused before it reaches the database."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_METADATA_DEPTH:
            return f"nested deeper than {MAX_METADATA_DEPTH} levels"
        if isinstance(item, str) and "\x00" in item:
            return "contains a NUL character, which cannot be stored"
        if isinstance(item, dict):
            pending += [(key, depth) for key in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            pending += [(v, depth + 1) for v in item]
    return None


def _text(value: Any, name: str, line: int, *, required: bool, max_length: int | None = None):
    if value is None or (isinstance(value, str) and not value.strip()):
        return ("", None) if not required else (None, RowError(line, name, "missing or empty"))
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None, RowError(line, name, f"expected text, got {type(value).__name__}")
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        return None, RowError(line, name, "contains a NUL character, which cannot be stored")
    if max_length and len(text) > max_length:
        return None, RowError(line, name, f"longer than {max_length} characters")
    return text, None


def _level(value: Any, line: int):
    if value is None or value == "":
        return None, None
    if isinstance(value, str):
        digits = value.strip().removeprefix("Level").strip()
        if digits.isdigit():
            value = int(digits)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LEVEL:
        return None, RowError(line, "level", f"expected a whole number such as 3, got {value!r}")
    return value, None


def validate_record(line: int, record: dict) -> ProblemRow | list[RowError]:
    errors: list[RowError] = []
    values: dict[str, Any] = {}
    external_id, error = _text(
        record.get("unique_id"), "unique_id", line, required=True, max_length=MAX_ID_LENGTH
    )
    errors += [error] if error else []
    for name, required, limit in (
        ("problem", True, MAX_TEXT_LENGTH),
        ("answer", True, MAX_TEXT_LENGTH),
        ("solution", False, MAX_TEXT_LENGTH),
        ("subject", False, MAX_SUBJECT_LENGTH),
    ):
        text, error = _text(record.get(name), name, line, required=required, max_length=limit)
        errors += [error] if error else []
        values[FIELD_MAP[name]] = (text or "").strip() if name == "subject" else text
    values["level"], error = _level(record.get("level"), line)
    errors += [error] if error else []
    values["metadata"] = {key: value for key, value in record.items() if key not in KNOWN_FIELDS}
    for key, value in values["metadata"].items():
        reason = _unstorable(key) or _unstorable(value)
        if reason:
            errors.append(RowError(line, key, reason))
    if errors:
        return errors
    return ProblemRow(line=line, external_id=external_id.strip(), values=values)


def _validate_file(path: Path, fmt: str, name: str, report: ImportReport) -> set[int]:
    """First pass: count rows, collect every error; return the lines to leave out."""
    first_line_of: dict[str, int] = {}
    bad_lines: set[int] = set()
    for line, record in _read(path, fmt, name):
        report.rows += 1
        result = record if isinstance(record, RowError) else validate_record(line, record)
        if isinstance(result, RowError):
            result = [result]
        if isinstance(result, list):
            report.errors += result
            bad_lines.add(line)
            continue
        first = first_line_of.setdefault(result.external_id, line)
        if first != line:
            report.errors.append(
                RowError(
                    line, "unique_id", f"duplicate id {result.external_id!r}, first on line {first}"
                )
            )
            bad_lines.add(line)
    if report.rows == 0:
        raise ImportFileError(f"{name} holds no rows: there are no problems to import.")
    return bad_lines


def _write_batch(source: str, batch: list[ProblemRow], report: ImportReport, dry_run: bool,
                 hygiene: _Hygiene) -> None:  # fmt: skip
    existing = {
        problem.external_id: problem
        for problem in Problem.objects.filter(
            source=source, external_id__in=[row.external_id for row in batch]
        )
    }
    to_create, to_update = [], []
    changed_rows, changed = [], []  # rows created or changed, and their problems
    now = timezone.now()
    for row in batch:
        problem = existing.get(row.external_id)
        if problem is None:
            problem = Problem(source=source, external_id=row.external_id, **row.values)
            to_create.append(problem)
        elif any(getattr(problem, name) != value for name, value in row.values.items()):
            for name, value in row.values.items():
                setattr(problem, name, value)
            problem.updated_at = now
            to_update.append(problem)
        else:
            report.unchanged += 1
            continue
        changed_rows.append(row)
        changed.append(problem)
    report.created += len(to_create)
    report.updated += len(to_update)
    if not dry_run:
        Problem.objects.bulk_create(to_create)
        Problem.objects.bulk_update(to_update, [*FIELD_MAP.values(), "metadata", "updated_at"])
    hygiene.check(changed_rows, changed, to_create, report, dry_run)


def problems_import(
    *,
    path: Path,
    source: str,
    fmt: str | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    batch_size: int = 1000,
    file_name: str | None = None,
) -> ImportReport:
    """Validate the whole file, then upsert its problems unless any row is bad.

    With ``skip_invalid`` bad rows are left out and the rest imported; with ``dry_run``
    the counts are computed but nothing is written. ``file_name`` is the name messages use
    (an upload's own name rather than the temporary copy's).
    """
    name = file_name or path.name
    source = source.strip()
    if not source:
        raise ImportFileError("The source name must not be empty.")
    fmt = fmt or detect_format(Path(name))
    if fmt not in FORMATS:
        raise ImportFileError(f"Unknown format {fmt!r}; expected one of {', '.join(FORMATS)}.")
    _check_readable(path, name)
    report = ImportReport()
    bad_lines = _validate_file(path, fmt, name, report)
    if report.errors and not skip_invalid:
        return report
    report.skipped = len(bad_lines)
    with transaction.atomic():
        hygiene = _Hygiene.start(dry_run)
        batch: list[ProblemRow] = []
        for line, record in _read(path, fmt, name):
            if line in bad_lines:
                continue
            batch.append(validate_record(line, record))
            if len(batch) >= batch_size:
                _write_batch(source, batch, report, dry_run, hygiene)
                batch = []
        if batch:
            _write_batch(source, batch, report, dry_run, hygiene)
        if not dry_run:
            hygiene.finish()
    report.written = not dry_run
    return report


@contextmanager
def uploaded_file(upload) -> Iterator[Path]:
    """An uploaded file as a path (a temporary copy under VAR_DIR, with the upload's suffix,
    which tells the format), removed afterwards; the importers read paths."""
    suffix = Path(upload.name).suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix, dir=settings.VAR_DIR) as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)
