"""Comparing answers in processes that a stuck comparison can be killed in."""

import os
import threading
import time

import pytest

from annotator import answer_check
from tests.support.slow_compare import compare_or_hang


@pytest.fixture
def hanging_pool(monkeypatch):
    pool = answer_check._Pool(function=compare_or_hang)
    monkeypatch.setattr(answer_check, "_pool", pool)
    yield pool
    pool.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_hanging_comparison_is_ended_at_its_bound_and_its_process_killed(hanging_pool, tmp_path):
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = answer_check.answers_compare("1", f"hang:{pid_file}", timeout=0.5)
    assert result == answer_check.Comparison(None, timed_out=True)  # unchecked, for lack of time
    assert time.monotonic() - started < 5
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the stuck comparison's process still runs"
    # The pool still answers the next comparisons, and quickly.
    started = time.monotonic()
    assert answer_check.answers_match("1/2", "0.5", timeout=10) is True
    assert answer_check.answers_match("1/2", "0.6", timeout=10) is False
    assert time.monotonic() - started < 3


def test_the_bound_counts_the_comparison_not_the_wait_for_a_free_process(hanging_pool):
    # Three times as many comparisons as processes, each taking most of its bound: they queue,
    # and none is given up for the time it spent waiting.
    results = []
    jobs = [
        threading.Thread(
            target=lambda: results.append(
                answer_check.answers_compare("1", "slow:0.4", timeout=1.5)
            )
        )
        for _ in range(3 * answer_check.POOL_SIZE)
    ]
    answer_check.answers_match("1/2", "0.5")  # the processes are up and warm
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(30)
    assert results == [answer_check.Comparison(True)] * len(jobs)


def test_answers_that_cannot_be_read_are_unchecked_but_not_timed_out():
    assert answer_check.answers_compare("4", "") == answer_check.Comparison(None)
    assert answer_check.answers_compare("4", "4") == answer_check.Comparison(True)
