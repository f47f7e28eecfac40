"""A real Celery worker process consumes tasks from the configured broker.

On embedded defaults that is the filesystem broker under VAR_DIR; in CI it is Redis.
"""

import os
import subprocess
import sys
import time

from django.conf import settings

from tests.support.tasks import touch


def test_a_real_worker_runs_a_queued_task(tmp_path):
    marker = tmp_path / "done.txt"
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--include=tests.support.tasks",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
            "--queues",
            "test-worker",
        ],  # fmt: skip
        cwd=settings.BASE_DIR,
        env={**os.environ, "VAR_DIR": str(settings.VAR_DIR)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        touch.apply_async(args=[str(marker), "hello from the worker"], queue="test-worker")
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), "the worker did not run the task"
        assert marker.read_text() == "hello from the worker"
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert "Traceback" not in output, output
