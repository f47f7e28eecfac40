"""Exports started from the UI or API: queued, run by a worker, downloadable as a zip."""

import logging
import shutil
import threading
import zipfile
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from ..models import Export
from . import prm, rollouts
from .writer import ExportError, check_style, dataset_export, parse_day, parse_splits

DAYS = ("created_since", "created_until", "finished_since", "finished_until", "since", "until")
FILTER_KEYS = (
    "status", *DAYS, "source", "subject", "level", "prompt", "endpoint", "model",
    "min_tokens", "checks_passed", "include_simulated", "allow_contaminated",
)  # fmt: skip
# Options kept with the filters (the export record has no column of their own).
OPTION_KEYS = ("dedup", "labels", "neutral", "records", "campaign", "pairs_per_problem",
               "samples_per_problem", "pick", "pair_layout")  # fmt: skip
STEPWISE_OPTIONS = {"labels": "human", "neutral": "negative"}  # prm and prm800k only
# What an export is made of and how rollout samples are chosen (export_dataset's --source,
# --campaign, --pairs-per-problem, --samples-per-problem, --pick, --pair-layout); recorded
# only when they differ from these defaults.
RECORD_OPTIONS = {
    "records": "traces", "campaign": "", "pairs_per_problem": rollouts.PAIRS_PER_PROBLEM,
    "samples_per_problem": rollouts.SAMPLES_PER_PROBLEM, "pick": "shortest",
    "pair_layout": "llama-factory",
}  # fmt: skip
logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30
# An export whose worker has not renewed its heartbeat for this long has lost its worker.
STALE_AFTER = timedelta(minutes=5)
# How the export page and the API include simulated traces, for "Nothing to export".
INCLUDE_HINT = 'tick "Include simulated traces" (include_simulated in the API)'


def export_start(*, user, fmt: str, style: str, system: str, split: str, seed: int,
                 filters: dict) -> Export:  # fmt: skip
    from ..tasks import run_export

    parse_splits(split)  # refuse a bad split or style now, not in the worker
    check_style(fmt, style)
    if fmt not in prm.FORMATS:  # labels mean nothing to the other formats: not recorded
        filters = {k: v for k, v in filters.items() if k not in STEPWISE_OPTIONS}
    filters = {k: v for k, v in filters.items() if RECORD_OPTIONS.get(k, object()) != v}
    export = Export.objects.create(
        format=fmt, style=style, system=system, split=split, seed=seed, created_by=user,
        filters={k: v for k, v in filters.items()
                 if k in (*FILTER_KEYS, *OPTION_KEYS) and v not in (None, "", [], False)},
    )  # fmt: skip
    transaction.on_commit(lambda: run_export.delay(export.pk))
    return export


class _Heartbeat:
    """Renews the export's heartbeat from a thread of its own while the export runs."""

    def __init__(self, export_id: int):
        self.export_id, self.stop = export_id, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="export-heartbeat")

    def _run(self) -> None:
        try:
            while not self.stop.wait(HEARTBEAT_SECONDS):
                Export.objects.filter(pk=self.export_id, status=Export.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            if not connection.allow_thread_sharing:  # tests share one in-memory database
                connection.close()

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self.thread.join()


def _write(export: Export):
    filters = dict(export.filters)
    dedup = bool(filters.pop("dedup", False))
    stepwise = {key: filters.pop(key, default) for key, default in STEPWISE_OPTIONS.items()}
    chosen = {key: filters.pop(key, default) for key, default in RECORD_OPTIONS.items()}
    for key in DAYS:
        if key in filters:
            filters[key] = parse_day(filters[key], key)
    result = dataset_export(
        output=export.folder, fmt=export.format, style=export.style, system=export.system,
        splits=parse_splits(export.split), seed=export.seed, force=True,
        filters=filters, include_hint=INCLUDE_HINT, dedup=dedup, **stepwise,
        sources=tuple(chosen["records"].split(",")), campaigns=chosen["campaign"],
        pairs_per_problem=chosen["pairs_per_problem"],
        samples_per_problem=chosen["samples_per_problem"], pick=chosen["pick"],
        pair_layout=chosen["pair_layout"],
    )  # fmt: skip
    with zipfile.ZipFile(export.archive, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(export.folder.iterdir()):
            archive.write(path, arcname=f"export-{export.pk}/{path.name}")
    return result


def export_run(*, export_id: int) -> Export:
    now = timezone.now()
    taken = Export.objects.filter(pk=export_id, status=Export.Status.QUEUED).update(
        status=Export.Status.RUNNING, heartbeat_at=now
    )
    export = Export.objects.get(pk=export_id)
    if not taken:
        return export
    try:
        with _Heartbeat(export_id):
            result = _write(export)
    except (ExportError, OSError) as exc:
        shutil.rmtree(export.folder, ignore_errors=True)
        export.status, export.error = Export.Status.FAILED, str(exc)
    except Exception as exc:  # an export never stays "running" because of a bug
        logger.exception("export %s failed", export_id)
        shutil.rmtree(export.folder, ignore_errors=True)
        export.status = Export.Status.FAILED
        export.error = f"The export failed on an unexpected error ({type(exc).__name__}: {exc})."
    else:
        export.status = Export.Status.SUCCEEDED
        export.counts, export.files, export.manifest = result.counts, result.files, result.manifest
        export.records = sum(result.counts.values())
    export.finished_at = timezone.now()
    export.save()
    return export


def exports_fail_stalled() -> int:
    """Fail the exports whose worker stopped renewing their heartbeat; returns how many."""
    cutoff = timezone.now() - STALE_AFTER
    return Export.objects.filter(status=Export.Status.RUNNING, heartbeat_at__lt=cutoff).update(
        status=Export.Status.FAILED,
        finished_at=timezone.now(),
        error="The worker running this export stopped (no sign of life for "
        f"{int(STALE_AFTER.total_seconds() // 60)} minutes); start the export again.",
    )
