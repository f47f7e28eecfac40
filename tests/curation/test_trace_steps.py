"""A trace's thought split into numbered steps with offsets, on success and after an edit."""

import pytest

from curation import services as curation
from curation.models import StepRating, StepSplit, TraceStep
from curation.ratings.steps import trace_steps_split
from expansion.parsing import paragraph_spans, thought_paragraphs
from expansion.signals import trace_succeeded
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db

THOUGHT = "  Try x = 3.\n\n\n3 + 3 = 6, not 8.  \n \nWait, so x = 4.\n"


def _standing(trace):
    return list(TraceStep.objects.filter(trace=trace, retired_at__isnull=True).order_by("number"))


def test_paragraph_spans_give_the_paragraphs_the_review_page_numbers():
    spans = paragraph_spans(THOUGHT)
    assert [THOUGHT[a:b] for a, b in spans] == [
        "Try x = 3.",
        "3 + 3 = 6, not 8.",
        "Wait, so x = 4.",
    ]
    assert [p.strip() for p in thought_paragraphs(THOUGHT)] == [THOUGHT[a:b] for a, b in spans]


def test_a_succeeded_trace_is_split_into_numbered_steps_with_offsets():
    trace = TraceFactory(thought=THOUGHT)
    trace_succeeded.send_robust(sender=type(trace), trace_id=trace.pk)
    steps = _standing(trace)
    assert [s.number for s in steps] == [1, 2, 3]
    assert [THOUGHT[s.start : s.end] for s in steps] == [s.text for s in steps]
    assert steps[1].text == "3 + 3 = 6, not 8."
    split = StepSplit.objects.get(trace=trace)
    assert split.steps == 3 and not split.unsplittable


def test_a_thought_without_blank_lines_is_flagged_unsplittable():
    trace = TraceFactory(thought="One long paragraph.\nStill the same one, however long.")
    split = trace_steps_split(trace_id=trace.pk)
    assert split.unsplittable and split.steps == 1
    assert [s.text for s in _standing(trace)] == [trace.thought]


def test_splitting_again_the_same_thought_changes_nothing():
    trace = TraceFactory(thought=THOUGHT)
    trace_steps_split(trace_id=trace.pk)
    before = [(s.pk, s.number) for s in _standing(trace)]
    trace_steps_split(trace_id=trace.pk)
    assert [(s.pk, s.number) for s in _standing(trace)] == before


def test_an_edit_resplits_and_unchanged_steps_keep_their_ratings(reviewer_user, admin_user):
    trace = TraceFactory(thought=THOUGHT)
    trace_steps_split(trace_id=trace.pk)
    first, second, third = _standing(trace)
    StepRating.objects.create(step=third, rater=admin_user, correctness=1)
    StepRating.objects.create(step=second, rater=admin_user, correctness=-1)
    edited = "A new opening.\n\nTry x = 3.\n\nWait, so x = 4."
    curation.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve",
                           edited_thought=edited)  # fmt: skip
    steps = _standing(trace)
    assert [s.text for s in steps] == ["A new opening.", "Try x = 3.", "Wait, so x = 4."]
    assert [edited[s.start : s.end] for s in steps] == [s.text for s in steps]
    assert steps[1].pk == first.pk and steps[2].pk == third.pk  # renumbered, same rows
    assert steps[2].ratings.get().correctness == 1
    removed = TraceStep.objects.get(pk=second.pk)
    assert removed.retired_at is not None and removed.ratings.get().correctness == -1
