"""A task for checking that a real worker consumes from the configured broker."""

from pathlib import Path

from celery import shared_task


@shared_task
def touch(path: str, text: str) -> None:
    Path(path).write_text(text)
