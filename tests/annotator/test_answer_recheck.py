"""An annotation's own final answer, left unchecked at submit for lack of time, is compared
again by the periodic recheck."""

import pytest

from annotator import answer_check, services
from annotator.models import Annotation
from expansion import tasks
from tests.support.slow_compare import compare_or_hang

from .test_annotation_services import claimed, save

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted_in_a_hurry(monkeypatch, tmp_path):
    """Submitted while every comparison hung past its bound."""
    held = save(claimed(reference_answer="7"), answer="8")
    pool = answer_check._Pool(function=compare_or_hang)
    monkeypatch.setattr(answer_check, "_pool", pool)
    real = answer_check.answers_compare
    monkeypatch.setattr(
        "annotator.services.answers_compare",
        lambda gold, candidate: real(gold, f"hang:{tmp_path / 'pid'}", timeout=0.3),
    )
    submitted = services.annotation_submit(annotation_id=held.pk, user=held.annotator)
    monkeypatch.undo()
    pool.stop()
    return submitted


def test_a_timed_out_check_is_marked_and_shown(submitted_in_a_hurry, client_as, reviewer_user):
    annotation = Annotation.objects.get(pk=submitted_in_a_hurry.pk)
    assert annotation.status == "submitted"  # a slow comparison does not block a submission
    assert annotation.answer_check == "unchecked" and annotation.answer_timed_out
    page = client_as(annotation.annotator).get(f"/annotations/{annotation.pk}/")
    assert "the comparison ran out of time and is run again later" in page.content.decode()


def test_the_recheck_task_gives_the_annotation_its_result(submitted_in_a_hurry, tasks_inline):
    assert tasks.recheck_answers.delay().get() == 1
    annotation = Annotation.objects.get(pk=submitted_in_a_hurry.pk)
    assert annotation.answer_check == "mismatch" and not annotation.answer_timed_out
    assert not annotation.mismatch_confirmed  # the annotator never saw the mismatch
    assert tasks.recheck_answers.delay().get() == 0  # nothing left to recheck


def test_answers_that_cannot_be_compared_are_not_rechecked(tasks_inline):
    held = save(claimed(reference_answer=""), answer="8")
    submitted = services.annotation_submit(annotation_id=held.pk, user=held.annotator)
    assert submitted.answer_check == "unchecked" and not submitted.answer_timed_out
    assert tasks.recheck_answers.delay().get() == 0
