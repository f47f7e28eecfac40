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
from django.db.models import F, Q
from django.utils import timezone

from .retrying import db_retry

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

    def update(self, *, what: str, seconds: float | None = None, **fields) -> bool:
        """Write ``fields`` if the job is still this run's, through a database blip."""
        return bool(db_retry(lambda: self.owned().update(**fields), what=what, seconds=seconds))

    def finish(self, **fields) -> bool:
        """End the job. What it holds was paid for: the save is tried again for far longer
        than other writes, so that an answer received during a database outage is stored
        once the database is back rather than bought a second time."""
        fields.setdefault("finished_at", timezone.now())
        seconds = settings.EXPANSION_DB_RETRY_SECONDS * 10
        return self.update(what=f"saving {self.model.__name__} {self.pk}", seconds=seconds,
                           **fields)  # fmt: skip

    def give_back(self) -> None:
        """Queue the job again after this run could not go on (the database stayed away);
        the message that brings it back is the task's own retry, or the periodic requeue,
        which re-sends a job with no message on record at once."""
        self.update(what=f"giving back {self.model.__name__} {self.pk}",
                    status=self.model.Status.QUEUED, run_id="", sent_at=None)  # fmt: skip

    def fail(self, kind: str, message: str, **fields) -> None:
        logger.warning("%s %s failed (%s): %s", self.model.__name__, self.pk, kind, message)
        self.finish(status=self.model.Status.FAILED, error_kind=kind, error_message=message,
                    **fields)  # fmt: skip


def job_claim(model: type[models.Model], pk: int) -> RunningJob | None:
    """Take the job if it is queued, or running on a worker that stopped heartbeating."""
    now = timezone.now()
    run_id = uuid.uuid4().hex
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    claimable = model.objects.filter(
        Q(status=model.Status.QUEUED) | Q(status=model.Status.RUNNING, heartbeat_at__lt=stale),
        pk=pk,
    )
    taken = db_retry(
        lambda: claimable.update(
            status=model.Status.RUNNING, run_id=run_id, heartbeat_at=now, started_at=now
        ),
        what=f"claiming {model.__name__} {pk}",
    )
    return RunningJob(model, pk, run_id) if taken else None


def job_cancel(model: type[models.Model], pk: int) -> bool:
    """Cancel a queued or running job; a running one stops at its next write."""
    return bool(jobs_cancel(model, Q(pk=pk)))


def jobs_cancel(model: type[models.Model], which: Q) -> int:
    """Cancel the queued and running jobs ``which`` selects (one write); how many."""
    return model.objects.filter(
        which, status__in=[model.Status.QUEUED, model.Status.RUNNING]
    ).update(status=model.Status.CANCELLED, finished_at=timezone.now())


def resend_interval(sends: int, *, first: float, cap: float) -> float:
    """How long after its last message a job waiting for a worker is sent again: ``first``,
    then twice as long after each further message, up to ``cap``. A message is lost rarely
    (a broker that lost its data), while a long backlog legitimately waits behind busy
    workers: its jobs are re-sent a handful of times an hour, not every minute."""
    return min(cap, first * 2 ** max(0, sends - 1))


def jobs_stalled(model: type[models.Model], *, first: float, cap: float) -> list[int]:
    """Jobs whose message may be lost: queued, or running without a heartbeat, and due for a
    message by ``resend_interval``. A stale running job that was not sent since its claim is
    due at once (the worker that claimed it stopped; one message per stall)."""
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    waiting = Q(status=model.Status.QUEUED) | Q(status=model.Status.RUNNING, heartbeat_at__lt=stale)
    not_sent_since_claim = Q(status=model.Status.RUNNING) & (
        Q(started_at__isnull=True) | Q(sent_at__lt=F("started_at"))
    )
    candidates = model.objects.filter(
        waiting,
        Q(sent_at__isnull=True)
        | Q(sent_at__lt=now - timezone.timedelta(seconds=first))
        | not_sent_since_claim,
    ).order_by("pk")
    due = []
    for pk, status, sends, sent_at, started_at in candidates.values_list(
        "pk", "status", "sends", "sent_at", "started_at"
    )[:1000]:
        claimed_since = status == model.Status.RUNNING and (
            started_at is None or sent_at is None or sent_at < started_at
        )
        interval = resend_interval(sends, first=first, cap=cap)
        if sent_at is None or claimed_since or (now - sent_at).total_seconds() >= interval:
            due.append(pk)
    return due


def jobs_mark_sent(model: type[models.Model], pks: list[int]) -> None:
    """Record one more message for each of these jobs, sent now."""
    model.objects.filter(pk__in=pks).update(sent_at=timezone.now(), sends=F("sends") + 1)


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
