"""A real worker rides out a Redis restart that loses the broker's data.

The test starts its own redis-server on a free port (the shared one is left alone), runs a
threads-pool worker against it with tasks in flight, restarts Redis without persistence, and
checks that the worker is still there: the tasks it was running finish, and a task sent after
the restart runs. kombu 5.7.0 ended the worker at this point ("Unrecoverable error:
AttributeError: 'NoneType' object has no attribute 'hostname'" while restoring the
unacknowledged messages), which is why the project pins kombu below 5.7.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from config.celery import app

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs the redis-server program"
)

QUEUE = "test-broker-restart"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_redis(port: int, directory: Path) -> subprocess.Popen:
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return redis
        except OSError:
            time.sleep(0.1)
    redis.kill()
    raise RuntimeError("redis-server did not start")


def _wait_for(predicate, seconds: float, worker: subprocess.Popen) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        if worker.poll() is not None:
            return predicate()
        time.sleep(0.2)
    return predicate()


def _send(url: str, path: Path, seconds: float) -> None:
    with app.connection_for_write(url) as connection:
        app.send_task(
            "tests.support.tasks.sleep_then_touch",
            args=[str(path), seconds],
            queue=QUEUE,
            connection=connection,
        )


def test_a_worker_survives_a_redis_restart_with_tasks_in_flight(tmp_path):
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis = _start_redis(port, tmp_path)
    log = tmp_path / "worker.log"
    env = {**os.environ, "REDIS_URL": url, "VAR_DIR": str(settings.VAR_DIR)}
    with log.open("w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--queues", QUEUE]
            + ["-P", "threads", "-c", "4", "--include=tests.support.tasks", "--loglevel=INFO"]
            + ["--without-mingle", "--without-gossip"],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    in_flight = [tmp_path / f"before-{n}" for n in range(2)]
    try:
        assert _wait_for(lambda: " ready." in log.read_text(), 60, worker), log.read_text()
        for path in in_flight:
            _send(url, path, 6)
        started = lambda: all(Path(f"{p}.started").exists() for p in in_flight)  # noqa: E731
        assert _wait_for(started, 30, worker), log.read_text()

        redis.terminate()
        redis.wait(timeout=10)
        time.sleep(2)
        redis = _start_redis(port, tmp_path)

        assert _wait_for(lambda: all(p.exists() for p in in_flight), 30, worker), (
            "the tasks in flight did not finish:\n" + log.read_text()
        )
        after = tmp_path / "after"
        _send(url, after, 0)
        assert _wait_for(after.exists, 60, worker), (
            "a task sent after the restart never ran:\n" + log.read_text()
        )
        assert worker.poll() is None, "the worker exited:\n" + log.read_text()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        redis.kill()
    assert "Unrecoverable error" not in log.read_text(), log.read_text()
