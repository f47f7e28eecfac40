"""How often a streaming answer's progress is saved: every 2 s, less often when a worker
process streams many answers at once, so that together they keep to a budget of saves."""

import threading

from expansion.jobs import engine
from tests.config.test_settings import manage


def test_one_answer_is_saved_every_two_seconds():
    assert engine.progress_every(1) == 2.0
    assert engine.progress_every(32) == 2.0  # 16 saves a second: the default budget


def test_many_answers_in_one_process_keep_to_the_budget_of_saves(settings):
    assert engine.progress_every(128) == 8.0  # 128 answers / 8 s = 16 saves a second
    settings.EXPANSION_PROGRESS_SAVES_PER_SECOND = 4
    assert engine.progress_every(20) == 5.0
    # At most 10 s apart whatever the load: a save is where a cancelled job stops streaming.
    assert engine.progress_every(1000) == 10.0


def test_answers_streaming_are_counted_while_they_stream():
    counter = engine._Streaming()
    entered, release = threading.Barrier(4), threading.Event()
    seen: list[int] = []

    def stream() -> None:
        with counter.one() as count:
            seen.append(count)
            entered.wait(timeout=5)
            release.wait(timeout=5)

    threads = [threading.Thread(target=stream) for _ in range(3)]
    for thread in threads:
        thread.start()
    entered.wait(timeout=5)
    assert counter.count == 3 and sorted(seen) == [1, 2, 3]
    release.set()
    for thread in threads:
        thread.join(timeout=5)
    assert counter.count == 0


def test_a_budget_below_one_is_refused_at_start(tmp_path):
    result = manage("check", tmp_path=tmp_path, DEBUG="1", EXPANSION_PROGRESS_SAVES_PER_SECOND="0")
    assert result.returncode != 0
    assert "EXPANSION_PROGRESS_SAVES_PER_SECOND must be at least 1, got 0" in result.stderr
