"""A job's database calls ride out a database blip: a terminated connection, a restart,
"too many clients", a pool with no free connection. The broken connection is closed (Django
would otherwise reuse it until the end of a request, which a task never reaches) and the
call tried again, with a growing pause, for a bounded time; then the error is raised for the
task to retry itself. Between its calls a job holds no connection (``connection_release``)."""

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


def connection_release() -> None:
    """Give this thread's database connection back while the job waits on something else
    (a slot, the LLM's answer, a backoff): to its process's pool on PostgreSQL, closed on
    SQLite (opening a file again is cheap). A job's thread thus holds a connection only for
    the few milliseconds of each write, and a worker's threads share a few connections
    however many requests they keep in flight. Inside a transaction (a test's) it is kept:
    closing it there would break the transaction."""
    if not connection.in_atomic_block:
        connection.close()
