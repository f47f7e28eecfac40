"""Comparing answers with math-verify, off the main thread and within a time bound.

math-verify's own timeouts use signal.alarm, which works only in a process's main thread;
web and worker threads disable them and bound the time here instead. math-verify (with
sympy) takes seconds to import, so it is imported on the first comparison, not at start-up.
"""

import importlib
import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

logger = logging.getLogger(__name__)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="answer-check")
DEFAULT_TIMEOUT = 5.0

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
    future = _pool.submit(_compare, gold, candidate)
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        logger.warning("Answer comparison took longer than %.1f s; left unchecked", timeout)
        return None
    except Exception:
        logger.exception("Answer comparison failed")
        return None
