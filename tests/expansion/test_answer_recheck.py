"""Answers left unchecked for lack of time are compared again by a periodic task."""

import pytest

from annotator import answer_check
from expansion import services, tasks
from expansion.models import Trace
from tests.support.slow_compare import compare_or_hang

pytestmark = pytest.mark.django_db


@pytest.fixture
def timed_out(submitted, endpoint, monkeypatch, tmp_path):
    """A trace whose answer comparisons all hung past their bound."""
    pool = answer_check._Pool(function=compare_or_hang)
    monkeypatch.setattr(answer_check, "_pool", pool)
    real = answer_check.answers_compare
    monkeypatch.setattr(
        "expansion.checks.answers_compare",
        lambda gold, candidate: real(gold, f"hang:{tmp_path / 'pid'}", timeout=0.3),
    )
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    monkeypatch.undo()
    pool.stop()
    return trace


def test_the_recheck_task_turns_a_timed_out_unchecked_answer_into_a_result(timed_out, tasks_inline):
    assert timed_out.status == "succeeded"
    assert timed_out.checks["matches_reference"] is None  # unchecked
    assert timed_out.checks["answer_timed_out"] == ["reference", "annotator"]
    assert not timed_out.flag_answer_mismatch

    assert tasks.recheck_answers.delay().get() == 1
    trace = Trace.objects.get(pk=timed_out.pk)
    assert trace.checks["matches_reference"] is True and trace.checks["matches_annotator"] is True
    assert trace.checks["answer_timed_out"] == []
    assert trace.profile.answer_match  # the analytics follow
    assert tasks.recheck_answers.delay().get() == 0  # nothing left to recheck


def test_answers_unchecked_for_want_of_a_reference_are_not_rechecked(submitted, endpoint):
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    Trace.objects.filter(pk=trace.pk).update(
        checks={**Trace.objects.get(pk=trace.pk).checks, "matches_reference": None}
    )
    assert tasks.recheck_answers() == 0
    assert Trace.objects.get(pk=trace.pk).checks["matches_reference"] is None


def test_the_recheck_runs_on_the_beat_schedule(settings):
    entries = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "expansion.tasks.recheck_answers" in entries
