"""A job's database calls ride out a database blip: a terminated connection, a restart,
"too many clients". The broken connection is closed (Django would otherwise reuse it until
the end of a request, which a task never reaches) and the call tried again, with a growing
pause, for a bounded time; then the error is raised for the task to retry itself."""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

# What a lost or refused connection raises; anything else (an IntegrityError, a bug) is not
# a blip and is raised at once.
DATABASE_DOWN = (OperationalError, InterfaceError)
PAUSE_FIRST, PAUSE_CAP = 0.2, 5.0

T = TypeVar("T")


def db_retry(call: Callable[[], T], *, what: str, seconds: float | None = None) -> T:
    """``call()``, tried again for up to ``seconds`` (EXPANSION_DB_RETRY_SECONDS) while the
    database is unreachable. Inside a transaction nothing is retried: the transaction is
    lost with its connection, so the error goes to whoever opened it."""
    budget = settings.EXPANSION_DB_RETRY_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + budget
    pause = PAUSE_FIRST
    while True:
        try:
            return call()
        except DATABASE_DOWN as error:
            if connection.in_atomic_block or time.monotonic() + pause > deadline:
                raise
            logger.warning("Database error while %s, trying again in %.1f s: %s",
                           what, pause, error)  # fmt: skip
            connection.close()  # a new connection next time; the broken one is never reused
            time.sleep(pause)
            pause = min(PAUSE_CAP, pause * 2)
