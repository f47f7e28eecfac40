"""The demo command: setting up, and what it prints."""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotator.models import Benchmark, Contamination, Problem


@pytest.mark.django_db
def test_demo_setup_is_safe_to_rerun(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    first = StringIO()
    call_command("demo", "--setup-only", stdout=first)
    second = StringIO()
    call_command("demo", "--setup-only", stdout=second)
    assert "500 created" in first.getvalue()
    assert "0 created, 500 already there" in second.getvalue()
    assert Problem.objects.count() == 500
    # The sample is MATH-500: registered once as a benchmark, which marks every problem.
    assert list(Benchmark.objects.values_list("name", flat=True)) == ["math500"]
    assert Contamination.objects.filter(exact=True).count() == 500
    assert "The sample problems are MATH-500 itself" in second.getvalue()
    # The same printed passwords work after a re-run.
    line = next(
        line for line in second.getvalue().splitlines() if line.strip().startswith("reviewer")
    )
    username, password = line.split()[1], line.split()[3]
    assert authenticate(username=username, password=password) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_address_and_passwords_come_last_once_the_worker_is_ready(tmp_path):
    """What `make demo` leaves on the screen: a few lines, ending with passwords and address."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(DEBUG="1", VAR_DIR=str(tmp_path), PORT=str(port), LLM_BASE_URL="", LLM_MODEL="")
    env["LLM_SIMULATOR_URL"] = f"http://127.0.0.1:{_free_port()}/v1"
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo"], cwd=settings.BASE_DIR, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout), daemon=True)
    reader.start()
    address = f"Open http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 240  # a loaded 2-core machine starts Celery slowly
        while not any(address in line for line in lines) and time.monotonic() < deadline:
            assert demo.poll() is None, "".join(lines)
            time.sleep(0.2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as page:
            assert page.status == 200  # ready when it says so
        time.sleep(2)  # anything printed after the address would land here
        shown = [line.rstrip() for line in lines if line.strip()]
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
    assert shown[-1].startswith(address), shown
    assert [line.split()[0] for line in shown[-4:-1]] == ["annotator", "reviewer", "admin"]
    assert re.fullmatch(r"Worker celery@\S+ ready\.", shown[-6]), shown
    # The worker's banner and the server's start-up went to their logs, not to the screen.
    assert len(shown) <= 12, shown
    assert not any("[tasks]" in line or "system checks" in line for line in shown)
    assert "celery@" in (tmp_path / "demo-worker.log").read_text()
