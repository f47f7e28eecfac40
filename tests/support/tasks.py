"""A task for checking that a real worker consumes from the configured broker."""

import time
from pathlib import Path

from celery import shared_task


@shared_task
def touch(path: str, text: str) -> None:
    Path(path).write_text(text)


@shared_task(acks_late=True)
def sleep_then_touch(path: str, seconds: float) -> None:
    """Mark that the task started, run for a while, then mark that it finished."""
    Path(f"{path}.started").write_text("started")
    time.sleep(seconds)
    Path(path).write_text("finished")
