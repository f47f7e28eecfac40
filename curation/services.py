"""Review decisions: claims on traces, approve / edit / reject / return / re-expand."""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from annotator.services import AnnotationLocked, annotation_return
from expansion.models import LLMEndpoint, PromptVersion, Trace
from expansion.services import traces_request

from .models import Decision, Reason, ReviewDecision, TraceReview
from .selectors import review_queue

CLAIM_MINUTES = 30


class ReviewRefused(Exception):
    """The decision breaks a rule; the message says which."""


class OwnAnnotation(ReviewRefused):
    """Nobody reviews a trace of their own annotation: a refusal of who asks, not of what."""


def _check_reviewer(trace: Trace, reviewer) -> None:
    if trace.annotation.annotator_id == reviewer.pk:
        raise OwnAnnotation("You cannot review a trace of your own annotation.")
    if trace.status != Trace.Status.SUCCEEDED:
        raise ReviewRefused("Only a succeeded trace can be reviewed.")


def _claim(trace: Trace, reviewer) -> TraceReview:
    review, _ = TraceReview.objects.select_for_update().get_or_create(trace=trace)
    now = timezone.now()
    if (
        review.claimed_by_id not in (None, reviewer.pk)
        and review.claim_expires_at
        and review.claim_expires_at > now
    ):
        raise ReviewRefused(f"{review.claimed_by} is reviewing this trace right now.")
    review.claimed_by = reviewer
    review.claim_expires_at = now + timedelta(minutes=CLAIM_MINUTES)
    review.save(update_fields=["claimed_by", "claim_expires_at"])
    return review


@transaction.atomic
def review_claim(*, trace_id: int, reviewer) -> TraceReview:
    """Claim a trace for review so that no other reviewer works on it at the same time."""
    trace = Trace.objects.select_related("annotation").get(pk=trace_id)
    _check_reviewer(trace, reviewer)
    return _claim(trace, reviewer)


@transaction.atomic
def review_next(*, reviewer, **filters) -> Trace | None:
    """Claim the oldest unclaimed trace awaiting review that is not the reviewer's own."""
    candidates = review_queue(reviewer=reviewer, unclaimed_only=True, **filters)
    if connection.features.has_select_for_update_skip_locked:
        candidates = candidates.select_for_update(skip_locked=True, of=("self",))
    passed_over: list[int] = []
    for _ in range(20):
        trace = candidates.exclude(pk__in=passed_over).first()
        if trace is None:
            return None
        try:
            # A fresh read under the row lock: another reviewer may have claimed it between
            # our snapshot and our lock.
            _claim(trace, reviewer)
        except ReviewRefused:
            passed_over.append(trace.pk)
            continue
        return trace
    return None


@transaction.atomic
def review_decide(
    *,
    trace_id: int,
    reviewer,
    decision: str,
    reason: str = "",
    comment: str = "",
    edited_thought: str = "",
    edited_solution: str = "",
    prompt: PromptVersion | None = None,
    endpoint: LLMEndpoint | None = None,
) -> ReviewDecision:
    """Record one decision and apply its effect. Decisions are never changed afterwards."""
    trace = Trace.objects.select_related("annotation").get(pk=trace_id)
    _check_reviewer(trace, reviewer)
    if decision not in Decision.values:
        raise ReviewRefused(f"Unknown decision {decision!r}.")
    if reason and reason not in Reason.values:
        raise ReviewRefused(f"Unknown reason {reason!r}.")
    if decision == Decision.REJECT and not reason:
        raise ReviewRefused("Rejecting needs a reason code.")
    if decision == Decision.RETURN and not comment.strip():
        raise ReviewRefused("Returning needs a comment for the annotator.")
    if (edited_thought or edited_solution) and decision != Decision.APPROVE:
        raise ReviewRefused("Edits go with an approval (edit, then approve).")
    review = _claim(trace, reviewer)
    if review.status != TraceReview.Status.PENDING:
        raise ReviewRefused(f"This trace was already decided ({review.status}).")
    if (
        decision == Decision.APPROVE
        and ReviewDecision.objects.filter(
            trace=trace, reviewer=reviewer, decision=Decision.APPROVE
        ).exists()
    ):
        raise ReviewRefused("You already approved this trace; it needs another reviewer.")

    before_thought, before_solution = review.thought, review.solution
    record = ReviewDecision(
        trace=trace, reviewer=reviewer, decision=decision, reason=reason, comment=comment,
        thought_before=before_thought, solution_before=before_solution,
    )  # fmt: skip
    now = timezone.now()
    if decision == Decision.APPROVE:
        if edited_thought and edited_thought != before_thought:
            review.edited_thought = record.thought_after = edited_thought
        if edited_solution and edited_solution != before_solution:
            review.edited_solution = record.solution_after = edited_solution
        review.approvals += 1
        if review.approvals >= settings.REVIEW_APPROVALS_REQUIRED:
            review.status, review.decided_at = TraceReview.Status.APPROVED, now
    elif decision == Decision.REJECT:
        review.status, review.decided_at = TraceReview.Status.REJECTED, now
    elif decision == Decision.RETURN:
        try:
            annotation_return(annotation_id=trace.annotation_id, comment=comment)
        except AnnotationLocked as exc:
            raise ReviewRefused(str(exc)) from exc
        review.status, review.decided_at = TraceReview.Status.RETURNED, now
    elif decision == Decision.REEXPAND:
        traces_request(annotation=trace.annotation, prompt=prompt, endpoint=endpoint,
                       requested_by=reviewer, extra=True)  # fmt: skip
        review.status, review.decided_at = TraceReview.Status.REEXPANDED, now
    review.claimed_by, review.claim_expires_at = None, None
    review.save()
    record.save()
    return record


@transaction.atomic
def review_pick_best(*, trace_id: int, reviewer) -> TraceReview:
    """Rank this trace first among its annotation's traces; the others follow it."""
    trace = Trace.objects.select_related("annotation").get(pk=trace_id)
    _check_reviewer(trace, reviewer)
    siblings = Trace.objects.filter(
        annotation_id=trace.annotation_id, status=Trace.Status.SUCCEEDED
    ).exclude(pk=trace.pk)
    for sibling in siblings:
        TraceReview.objects.update_or_create(trace=sibling, defaults={"rank": 2})
    review, _ = TraceReview.objects.update_or_create(trace=trace, defaults={"rank": 1})
    return review
