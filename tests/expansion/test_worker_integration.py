"""A real Celery worker (threads pool) expands submitted annotations through the simulator.

On embedded defaults the broker is the filesystem one; in CI it is Redis, and the database
is PostgreSQL. Killing the worker mid-batch loses no job and duplicates none.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.db import connection

from expansion import services
from expansion.jobs import lifecycle
from expansion.models import Trace
from expansion.tasks import requeue_stalled_traces

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def start_worker(concurrency: int = 8, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(settings.VAR_DIR),
        "EXPANSION_HEARTBEAT_STALE_SECONDS": "3",
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "expansion",
         "-P", "threads", "-c", str(concurrency), "--loglevel=WARNING",
         "--without-mingle", "--without-gossip"],  # fmt: skip
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip


def wait_for(predicate, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def stop(worker: subprocess.Popen, sig=signal.SIGTERM) -> str:
    os.killpg(worker.pid, sig)
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        output, _ = worker.communicate(timeout=10)
    return output


def test_a_worker_expands_a_batch_and_survives_being_killed(
    submitted, endpoint, simulator, monkeypatch, settings
):
    monkeypatch.setattr(lifecycle, "HEARTBEAT_STALE_SECONDS", 3)
    # Messages the killed worker had reserved come back only after the broker's visibility
    # timeout; the periodic task sends long-queued jobs again (here after 5 s, not 15 min).
    settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS = 5
    simulator.configure(seconds_per_token=0.004, target_tokens=400)  # about 1.6 s per answer
    traces = services.traces_request(annotation=submitted, endpoint=endpoint, samples=8, extra=True)
    worker = start_worker()
    try:
        assert wait_for(lambda: Trace.objects.filter(status="running").exists(), 60)
        stop(worker, signal.SIGKILL)  # mid-batch, no warm shutdown
        worker = start_worker()
        # The periodic task (beat, every minute in production) finds the jobs whose worker
        # stopped heartbeating and sends them again.
        unfinished = Trace.objects.filter(pk__in=[t.pk for t in traces]).exclude(status="succeeded")
        deadline = time.monotonic() + 120
        while unfinished.exists() and time.monotonic() < deadline:
            time.sleep(4)
            requeue_stalled_traces()
    finally:
        output = stop(worker)
    batch = Trace.objects.filter(endpoint=endpoint)
    assert batch.count() == 8  # no duplicate trace
    statuses = list(batch.values_list("status", "error_kind", "error_message"))
    assert batch.filter(status="succeeded").count() == 8, statuses
    # The submission's own sample (queued on commit to the default endpoint) ran too.
    assert Trace.objects.filter(annotation=submitted).exclude(status="succeeded").count() == 0
    assert "Traceback" not in output, output
