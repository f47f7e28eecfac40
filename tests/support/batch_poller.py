"""The batch poller in a process of its own, for a test to kill it mid-ingestion.

Each succeeded job is written to the file POLLER_LOG names and then pauses POLLER_PAUSE
seconds (a receiver of trace_succeeded), so that ingesting a batch takes long enough to be
interrupted between two jobs, as a worker killed by the OOM killer or a deploy would be."""

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()

from expansion.batches import flow  # noqa: E402
from expansion.signals import trace_succeeded  # noqa: E402


def noted(sender, trace_id: int, **kwargs) -> None:
    with open(os.environ["POLLER_LOG"], "a") as log:
        log.write(f"{trace_id}\n")
    time.sleep(float(os.environ.get("POLLER_PAUSE", "0.5")))


trace_succeeded.connect(noted, dispatch_uid="batch-poller-test")
while True:
    flow.batches_tick()
    time.sleep(0.1)
