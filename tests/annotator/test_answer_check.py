"""Comparing answers stays possible when comparisons hang."""

import threading

from annotator import answer_check


def test_comparisons_go_on_after_every_thread_is_stuck_in_a_hanging_one(monkeypatch):
    compare, release = answer_check._compare, threading.Event()

    def hangs_on_request(gold: str, candidate: str):
        if candidate == "hang":  # a sympy computation that never ends
            release.wait(30)
        return compare(gold, candidate)

    monkeypatch.setattr(answer_check, "_compare", hangs_on_request)
    monkeypatch.setattr(answer_check, "_pool", answer_check._Pool())
    try:
        for _ in range(answer_check.POOL_SIZE):
            assert answer_check.answers_match("1", "hang", timeout=0.2) is None  # unchecked
        assert answer_check.answers_match("1/2", "0.5", timeout=10) is True
        assert answer_check.answers_match("1/2", "0.6", timeout=10) is False
    finally:
        release.set()
