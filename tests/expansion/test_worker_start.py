"""A starting worker loads what its first jobs need before it takes them."""

import json
import os
import subprocess
import sys

from django.conf import settings

PROBE = """
import json, sys, time
import django
django.setup()
from celery.signals import worker_init
import expansion.tasks  # as the worker's task discovery does
slow = ("openai.resources.chat", "math_verify")
before = [name for name in slow if name in sys.modules]
worker_init.send(sender=None)
from annotator import answer_check
started = time.monotonic()
answer_check.answers_match("2/4", "0.5")  # a new comparison: none is cached
first = time.monotonic() - started
print(json.dumps({"before": before, "after": [name for name in slow if name in sys.modules],
                  "pool": answer_check._pool.pool is not None, "first_comparison": first}))
"""


def test_worker_start_loads_the_sdk_resources_and_math_verify_before_the_first_job():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=settings.BASE_DIR, capture_output=True, text=True,
        env={**os.environ, "VAR_DIR": str(settings.VAR_DIR)}, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # Both are loaded lazily by a web process, and on worker start by the worker: the SDK in
    # the worker itself, math-verify in the answer-check processes it starts.
    assert loaded["before"] == [] and loaded["after"] == ["openai.resources.chat"]
    assert loaded["pool"] and loaded["first_comparison"] < 1.0
