"""An export started from the page or API always ends: failed with its reason when the
writer raises something unexpected, or when its worker dies mid-run."""

from datetime import timedelta

import pytest
from django.utils import timezone

from curation.exports import runs
from curation.models import Export

pytestmark = pytest.mark.django_db


def _export(admin_user, **fields) -> Export:
    return Export.objects.create(format="messages", style="think-tags", created_by=admin_user,
                                 **fields)  # fmt: skip


def test_an_unexpected_error_ends_the_export_failed_with_its_reason(
    admin_user, settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path

    def broken(**kwargs):
        raise KeyError("prompt_version")

    monkeypatch.setattr(runs, "dataset_export", broken)
    export = runs.export_run(export_id=_export(admin_user).pk)
    export.refresh_from_db()
    assert export.status == Export.Status.FAILED
    assert "unexpected error" in export.error and "KeyError" in export.error
    assert export.finished_at is not None


def test_the_sweep_fails_exports_whose_worker_stopped_and_leaves_live_ones(admin_user):
    now = timezone.now()
    dead = _export(admin_user, status=Export.Status.RUNNING,
                   heartbeat_at=now - timedelta(minutes=6))  # fmt: skip
    alive = _export(admin_user, status=Export.Status.RUNNING, heartbeat_at=now)
    queued = _export(admin_user)
    assert runs.exports_fail_stalled() == 1
    dead.refresh_from_db(), alive.refresh_from_db(), queued.refresh_from_db()
    assert dead.status == Export.Status.FAILED and "start the export again" in dead.error
    assert alive.status == Export.Status.RUNNING
    assert queued.status == Export.Status.QUEUED


def test_a_redelivered_message_leaves_a_running_export_to_its_worker(admin_user):
    running = _export(admin_user, status=Export.Status.RUNNING, heartbeat_at=timezone.now())
    assert runs.export_run(export_id=running.pk).status == Export.Status.RUNNING


def test_the_beat_schedule_runs_the_sweep(settings):
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "curation.tasks.fail_stalled_exports" in tasks
