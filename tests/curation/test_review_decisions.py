"""Edits as a browser sends them, and undoing a decision."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from annotator.roles import Role
from curation import services
from curation.models import ReviewDecision, TraceReview
from curation.selectors import review_queue
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db

THOUGHT = "Hmm, try 2.\n\nWait, 2 fails.\n\nSo x = 4."
SOLUTION = "Check: 4 + 1 = 5.\n\nSo $\\boxed{4}$."


def crlf(text):
    return text.replace("\n", "\r\n")


@pytest.fixture
def trace():
    return TraceFactory(thought=THOUGHT, solution=SOLUTION)


def decide(trace, reviewer, decision="approve", **kwargs):
    return services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision=decision, **kwargs)


def undo(record, reviewer):
    return services.review_undo(decision_id=record.pk, reviewer=reviewer)


def test_an_edit_is_stored_with_newline_line_endings(trace, reviewer_user):
    record = decide(trace, reviewer_user, edited_thought=crlf(THOUGHT + "\n\nDone.") + "\r",
                    edited_solution=crlf(SOLUTION))  # fmt: skip
    review = TraceReview.objects.get(trace=trace)
    assert review.edited_thought == THOUGHT + "\n\nDone.\n" and "\r" not in record.thought_after


def test_only_the_part_whose_text_changed_counts_as_edited(trace, reviewer_user):
    record = decide(trace, reviewer_user, edited_thought=crlf(THOUGHT + "\n\nDone."),
                    edited_solution=crlf(SOLUTION))  # fmt: skip
    review = TraceReview.objects.get(trace=trace)
    assert review.edited_thought and review.edited_solution == ""
    assert record.solution_after == "" and review.solution == SOLUTION


def test_an_edit_that_changes_nothing_is_no_edit(trace, reviewer_user):
    record = decide(trace, reviewer_user, edited_thought=crlf(THOUGHT),
                    edited_solution=crlf(SOLUTION))  # fmt: skip
    review = TraceReview.objects.get(trace=trace)
    assert (review.edited_thought, review.edited_solution) == ("", "")
    assert not record.edited and review.status == "approved"


def test_a_model_text_with_crlf_left_as_it_was_is_no_edit(reviewer_user):
    trace = TraceFactory(thought=crlf(THOUGHT), solution=crlf(SOLUTION))
    decide(trace, reviewer_user, edited_thought=crlf(THOUGHT), edited_solution=crlf(SOLUTION))
    review = TraceReview.objects.get(trace=trace)
    assert (review.edited_thought, review.edited_solution) == ("", "")


def test_undo_puts_an_approval_back_to_pending_and_is_recorded(trace, reviewer_user):
    approval = decide(trace, reviewer_user)
    record = undo(approval, reviewer_user)
    review = TraceReview.objects.get(trace=trace)
    assert review.status == "pending" and review.approvals == 0 and review.decided_at is None
    assert record.decision == "undo" and record.undoes == approval
    assert list(ReviewDecision.objects.filter(trace=trace).values_list("decision", flat=True)) == [
        "approve",
        "undo",
    ]
    assert list(review_queue()) == [trace]
    assert review.claimed_by == reviewer_user  # back with the reviewer who is looking at it


def test_undo_withdraws_the_edit_that_came_with_the_approval(trace, reviewer_user):
    approval = decide(trace, reviewer_user, edited_thought="A cleaner thought.")
    record = undo(approval, reviewer_user)
    review = TraceReview.objects.get(trace=trace)
    assert review.edited_thought == "" and review.thought == THOUGHT
    assert record.thought_before == "A cleaner thought." and record.thought_after == THOUGHT


def test_after_an_undo_the_reviewer_decides_again(trace, reviewer_user):
    undo(decide(trace, reviewer_user), reviewer_user)
    decide(trace, reviewer_user)  # the undone approval does not count as "already approved"
    assert TraceReview.objects.get(trace=trace).status == "approved"


def test_undo_of_a_rejection(trace, reviewer_user):
    undo(decide(trace, reviewer_user, "reject", reason="style"), reviewer_user)
    assert TraceReview.objects.get(trace=trace).status == "pending"


def test_undo_refusals(trace, reviewer_user, settings):
    settings.REVIEW_APPROVALS_REQUIRED = 2
    first = decide(trace, reviewer_user)
    other = UserFactory(username="other", role=Role.REVIEWER)
    with pytest.raises(services.ReviewRefused, match="Only the reviewer"):
        undo(first, other)
    second = decide(trace, other)
    with pytest.raises(services.ReviewRefused, match="Another decision followed"):
        undo(first, reviewer_user)
    undo(second, other)
    with pytest.raises(services.ReviewRefused, match="Another decision followed"):
        undo(second, other)  # an undo is undone at most once


def test_an_undo_comes_within_moments_of_the_decision(trace, reviewer_user):
    approval = decide(trace, reviewer_user)
    ReviewDecision.objects.filter(pk=approval.pk).update(  # as if made a while ago
        created_at=timezone.now() - services.UNDO_ACCEPTED - timedelta(seconds=1)
    )
    with pytest.raises(services.ReviewRefused, match="Too late"):
        undo(approval, reviewer_user)
    assert TraceReview.objects.get(trace=trace).status == "approved"


def test_return_and_reexpand_cannot_be_undone(trace, reviewer_user):
    returned = decide(trace, reviewer_user, "return", comment="Say why.")
    with pytest.raises(services.ReviewRefused, match="cannot be undone"):
        undo(returned, reviewer_user)
    with pytest.raises(services.ReviewRefused, match="Unknown decision"):
        decide(TraceFactory(), reviewer_user, "undo")


def test_the_export_says_edited_only_for_a_real_edit_and_names_each_approver_once(
    tmp_path, reviewer_user
):
    untouched, edited, undone = (TraceFactory(thought=THOUGHT, solution=SOLUTION) for _ in "abc")
    decide(untouched, reviewer_user, edited_thought=crlf(THOUGHT), edited_solution=crlf(SOLUTION))
    decide(edited, reviewer_user, edited_thought=crlf(THOUGHT + "\n\nDone."),
           edited_solution=crlf(SOLUTION))  # fmt: skip
    undo(decide(undone, reviewer_user), reviewer_user)
    decide(undone, reviewer_user)
    call_command("export_dataset", "--output", str(tmp_path / "out"), "--format", "messages",
                 stdout=StringIO(), stderr=StringIO())  # fmt: skip
    text = (tmp_path / "out" / "train.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines()]
    by_trace = {row["metadata"]["trace_id"]: row for row in rows}
    assert by_trace[untouched.pk]["metadata"]["edited"] is False
    assert by_trace[edited.pk]["metadata"]["edited"] is True
    answer = by_trace[edited.pk]["messages"][-1]["content"]
    assert "\r" not in answer and answer.endswith(SOLUTION)
    assert len(by_trace[undone.pk]["metadata"]["reviewers"]) == 1


def test_the_migration_clears_edits_saved_before_line_endings_were_normalized(reviewer_user):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("curation.migrations.0005_decision_undo")
    trace = TraceFactory(thought=THOUGHT, solution=SOLUTION)
    TraceReview.objects.create(trace=trace, edited_thought=crlf(THOUGHT + "\n\nDone."),
                               edited_solution=crlf(SOLUTION))  # fmt: skip
    migration.normalize_edits(apps, None)
    review = TraceReview.objects.get(trace=trace)
    assert (review.edited_thought, review.edited_solution) == (THOUGHT + "\n\nDone.", "")


def test_an_undone_verdict_is_not_compared_between_reviewers(trace, reviewer_user, settings):
    from curation.analytics import metrics

    settings.REVIEW_APPROVALS_REQUIRED = 2
    decide(trace, reviewer_user)
    other = UserFactory(username="other", role=Role.REVIEWER)
    undo(decide(trace, other), other)
    mine = next(row for row in metrics.reviewers() if row["id"] == reviewer_user.pk)
    assert (mine["pairs"], mine["agreed"]) == (0, 0)
