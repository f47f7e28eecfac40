"""Comparing answers with math-verify, off the main thread and within a time bound.

math-verify's own timeouts use signal.alarm, which works only in a process's main thread;
web and worker threads disable them and bound the time here instead. math-verify (with
sympy) takes seconds to import, so it is imported on the first comparison, not at start-up.
"""

import importlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

logger = logging.getLogger(__name__)
POOL_SIZE = 4
DEFAULT_TIMEOUT = 5.0


class _Pool:
    """The comparison threads. A comparison past its time bound cannot be stopped (a thread
    cannot be killed): once every thread of the pool is stuck in one, the pool is left to
    them and a fresh one takes the next comparisons, which would otherwise all time out."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="answer-check")
        self.stuck = 0

    def submit(self, *args):
        with self.lock:
            return self.executor, self.executor.submit(*args)

    def gave_up(self, executor, future) -> None:
        if future.cancel():  # it had not started: nothing is stuck
            return
        with self.lock:
            if executor is not self.executor:
                return
            self.stuck += 1
            if self.stuck >= POOL_SIZE:
                logger.warning("All %d answer-check threads are stuck; starting new ones",
                               POOL_SIZE)  # fmt: skip
                executor.shutdown(wait=False)
                self.executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="answer-check")
                self.stuck = 0


_pool = _Pool()

# math-verify warns on every call that its own timeout is off; that is deliberate here.
logging.getLogger("math_verify").setLevel(logging.ERROR)


def _as_latex(answer: str) -> str:
    answer = answer.strip()
    return answer if "$" in answer or "\\boxed" in answer else f"${answer}$"


def _compare(gold: str, candidate: str) -> bool | None:
    from math_verify import parse, verify  # already imported by answers_match

    parsed_gold = parse(_as_latex(gold), parsing_timeout=None)
    parsed_candidate = parse(_as_latex(candidate), parsing_timeout=None)
    if not parsed_gold or not parsed_candidate:
        return None
    return verify(parsed_gold, parsed_candidate, timeout_seconds=None)


def answers_match(gold: str, candidate: str, *, timeout: float = DEFAULT_TIMEOUT) -> bool | None:
    """True or False when the two answers could be compared, None when they could not."""
    if not gold.strip() or not candidate.strip():
        return None
    if gold.strip() == candidate.strip():
        return True
    importlib.import_module("math_verify")  # here, so that the time bound leaves it out
    executor, future = _pool.submit(_compare, gold, candidate)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        logger.warning("Answer comparison took longer than %.1f s; left unchecked", timeout)
        _pool.gave_up(executor, future)
        return None
    except Exception:
        logger.exception("Answer comparison failed")
        return None
