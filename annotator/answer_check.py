"""Comparing answers with math-verify, in worker processes that a stuck comparison can be
killed in.

A sympy comparison can run for minutes or for ever, and a thread cannot be stopped: so each
comparison runs in a small pool of processes (pebble), and one past its time bound has its
process killed and replaced. The bound counts the comparison alone, from when a process takes
it, not the wait for a free process, so that comparisons queued under load are not given up
unchecked. The wait itself is capped (WAIT_LIMIT) so that no web request hangs on a busy pool.

math-verify's own timeouts use signal.alarm, which needs a process's main thread; here they
are off and the pool bounds the time. The processes are forked from a forkserver that has
math-verify (with sympy, seconds to import) loaded, and each one runs a comparison before it
takes work, so a replaced process is warm at once. The pool starts on the first comparison
in each process (web, worker, shell), or at a Celery worker's start (expansion.tasks).
Like every forkserver child, they import the starting script's main module again, so a script
that compares answers keeps its work under ``if __name__ == "__main__":`` (manage.py, celery,
gunicorn and pytest do).
"""

import logging
import multiprocessing
import multiprocessing.util
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from pebble import ProcessPool

logger = logging.getLogger(__name__)
POOL_SIZE = 2  # processes per web or worker process: comparisons are short and CPU-bound
DEFAULT_TIMEOUT = 5.0  # seconds of comparison, from when a process starts it
WAIT_LIMIT = 20.0  # seconds a caller waits in all, queue included (under gunicorn's 30 s)

# math-verify warns on every call that its own timeout is off; that is deliberate here.
logging.getLogger("math_verify").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Comparison:
    """``match`` is True or False when the answers could be compared, else None; then
    ``timed_out`` says whether it was for lack of time (worth trying again later)."""

    match: bool | None
    timed_out: bool = False


def _as_latex(answer: str) -> str:
    answer = answer.strip()
    return answer if "$" in answer or "\\boxed" in answer else f"${answer}$"


def _compare(gold: str, candidate: str) -> bool | None:
    from math_verify import parse, verify

    parsed_gold = parse(_as_latex(gold), parsing_timeout=None)
    parsed_candidate = parse(_as_latex(candidate), parsing_timeout=None)
    if not parsed_gold or not parsed_candidate:
        return None
    return verify(parsed_gold, parsed_candidate, timeout_seconds=None)


def _warm_up() -> None:
    """In each new process, before it takes a comparison: sympy's first use is slow too."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _compare("1/2", "0.5")


class _Pool:
    """The comparison processes of one process (a forked web or Celery worker makes its own)."""

    def __init__(self, function: Callable[[str, str], bool | None] = _compare) -> None:
        self.function = function
        self.lock = threading.Lock()
        self.pool: ProcessPool | None = None
        self.pid = 0

    def get(self) -> ProcessPool:
        with self.lock:
            if self.pool is None or self.pid != os.getpid() or not self.pool.active:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["math_verify", __name__])
                self.pool = ProcessPool(POOL_SIZE, initializer=_warm_up, context=context)
                self.pid = os.getpid()
            return self.pool

    def stop(self) -> None:
        with self.lock:
            if self.pool is not None and self.pid == os.getpid():
                self.pool.stop()
                self.pool.join(timeout=5)
            self.pool = None


_pool = _Pool()
# Stopped before multiprocessing joins the children at exit (pebble's are not daemons, so a
# worker's shutdown would otherwise wait on them for ever); atexit runs too late under Celery.
multiprocessing.util.Finalize(None, lambda: _pool.stop(), exitpriority=10)


def answers_compare(gold: str, candidate: str, *, timeout: float = DEFAULT_TIMEOUT) -> Comparison:
    """Compare two answers within ``timeout`` seconds of comparison."""
    if not gold.strip() or not candidate.strip():
        return Comparison(None)
    if gold.strip() == candidate.strip():
        return Comparison(True)
    future = _pool.get().schedule(_pool.function, args=(gold, candidate), timeout=timeout)
    try:
        return Comparison(future.result(timeout=WAIT_LIMIT))
    except TimeoutError:
        if future.done():  # pebble's: the process was killed at the bound
            logger.warning("Answer comparison took longer than %.1f s; left unchecked", timeout)
        else:  # still queued after WAIT_LIMIT: the pool is swamped
            future.cancel()
            logger.warning("No process compared the answers within %.0f s", WAIT_LIMIT)
        return Comparison(None, timed_out=True)
    except Exception:
        logger.exception("Answer comparison failed")
        return Comparison(None)


def answers_match(gold: str, candidate: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool | None:
    """True or False when the two answers could be compared, None when they could not."""
    return answers_compare(gold, candidate, timeout=timeout).match
