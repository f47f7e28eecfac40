"""Exports started from the UI or API: queued, run by a worker, downloadable as a zip."""

import shutil
import zipfile

from django.db import transaction
from django.utils import timezone

from ..models import Export
from .writer import ExportError, dataset_export, parse_day, parse_splits

DAYS = ("created_since", "created_until", "finished_since", "finished_until", "since", "until")
FILTER_KEYS = (
    "status", *DAYS, "source", "subject", "level", "prompt", "endpoint", "model",
    "min_tokens", "checks_passed", "include_simulated",
)  # fmt: skip


def export_start(*, user, fmt: str, style: str, system: str, split: str, seed: int,
                 filters: dict) -> Export:  # fmt: skip
    from ..tasks import run_export

    parse_splits(split)  # refuse a bad split now, not in the worker
    export = Export.objects.create(
        format=fmt, style=style, system=system, split=split, seed=seed, created_by=user,
        filters={k: v for k, v in filters.items() if k in FILTER_KEYS and v not in (None, "")},
    )  # fmt: skip
    transaction.on_commit(lambda: run_export.delay(export.pk))
    return export


def export_run(*, export_id: int) -> Export:
    taken = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING
    )
    export = Export.objects.get(pk=export_id)
    if not taken:
        return export
    try:
        filters = dict(export.filters)
        for key in DAYS:
            if key in filters:
                filters[key] = parse_day(filters[key], key)
        result = dataset_export(
            output=export.folder, fmt=export.format, style=export.style, system=export.system,
            splits=parse_splits(export.split), seed=export.seed, force=True,
            filters=filters,
        )  # fmt: skip
        with zipfile.ZipFile(export.archive, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(export.folder.iterdir()):
                archive.write(path, arcname=f"export-{export.pk}/{path.name}")
    except (ExportError, OSError) as exc:
        shutil.rmtree(export.folder, ignore_errors=True)
        export.status, export.error = Export.Status.FAILED, str(exc)
    else:
        export.status = Export.Status.SUCCEEDED
        export.counts, export.files, export.manifest = result.counts, result.files, result.manifest
        export.records = sum(result.counts.values())
    export.finished_at = timezone.now()
    export.save()
    return export
