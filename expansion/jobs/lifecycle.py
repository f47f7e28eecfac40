"""Who runs a job: the claim that makes one worker its owner, the heartbeats that keep it,
and the jobs to send again (stalled) or to stop (cancelled)."""

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

logger = logging.getLogger(__name__)

# A running job silent this long has lost its worker.
HEARTBEAT_STALE_SECONDS = int(getattr(settings, "EXPANSION_HEARTBEAT_STALE_SECONDS", 120))
# A live worker renews its jobs' heartbeats this often, whatever their requests are doing.
HEARTBEAT_EVERY = max(0.5, HEARTBEAT_STALE_SECONDS / 4)


@dataclass(frozen=True)
class RunningJob:
    """A job this worker claimed. Every write goes through ``owned()``, so that a job that
    was cancelled or taken over by another worker is never written again by this one."""

    model: type[models.Model]
    pk: int
    run_id: str

    def owned(self) -> models.QuerySet:
        return self.model.objects.filter(
            pk=self.pk, run_id=self.run_id, status=self.model.Status.RUNNING
        )

    def finish(self, **fields) -> bool:
        fields.setdefault("finished_at", timezone.now())
        return bool(self.owned().update(**fields))

    def fail(self, kind: str, message: str, **fields) -> None:
        logger.warning("%s %s failed (%s): %s", self.model.__name__, self.pk, kind, message)
        self.finish(status=self.model.Status.FAILED, error_kind=kind, error_message=message,
                    **fields)  # fmt: skip


def job_claim(model: type[models.Model], pk: int) -> RunningJob | None:
    """Take the job if it is queued, or running on a worker that stopped heartbeating."""
    now = timezone.now()
    run_id = uuid.uuid4().hex
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    taken = model.objects.filter(
        Q(status=model.Status.QUEUED) | Q(status=model.Status.RUNNING, heartbeat_at__lt=stale),
        pk=pk,
    ).update(status=model.Status.RUNNING, run_id=run_id, heartbeat_at=now, started_at=now)
    return RunningJob(model, pk, run_id) if taken else None


def job_cancel(model: type[models.Model], pk: int) -> bool:
    """Cancel a queued or running job; a running one stops at its next write."""
    return bool(
        model.objects.filter(pk=pk, status__in=[model.Status.QUEUED, model.Status.RUNNING]).update(
            status=model.Status.CANCELLED, finished_at=timezone.now()
        )
    )


def jobs_stalled(model: type[models.Model], *, queued_after_seconds: int) -> list[int]:
    """Jobs to send again: running without a heartbeat, or queued for very long."""
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    old = now - timezone.timedelta(seconds=queued_after_seconds)
    return list(
        model.objects.filter(
            Q(status=model.Status.RUNNING, heartbeat_at__lt=stale)
            | Q(status=model.Status.QUEUED, created_at__lt=old)
        ).values_list("pk", flat=True)[:1000]
    )


class Heartbeats:
    """The jobs this process is running, whose heartbeats one thread renews every
    HEARTBEAT_EVERY seconds: a request can wait minutes for its first token, or a retry sit
    out a long Retry-After, and its job must not look abandoned meanwhile (another worker
    would take it over and pay for a second answer)."""

    def __init__(self) -> None:
        self.running: dict[tuple[type[models.Model], int], str] = {}  # (model, pk) -> run id
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @contextmanager
    def held(self, job: RunningJob) -> Iterator[None]:
        with self.lock:
            self.running[job.model, job.pk] = job.run_id
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.running.pop((job.model, job.pk), None)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY)
            with self.lock:
                running = list(self.running.items())
            owned: dict[type[models.Model], Q] = {}
            for (model, pk), run_id in running:
                owned[model] = owned.get(model, Q()) | Q(pk=pk, run_id=run_id)
            try:
                for model, jobs in owned.items():
                    model.objects.filter(jobs, status=model.Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
            except Exception:  # a database blip must not end the heartbeats; next round
                logger.warning("Could not renew the heartbeats of running jobs", exc_info=True)
            finally:
                if owned:
                    connection.close()  # this thread's own connection; none held between beats


heartbeats = Heartbeats()
