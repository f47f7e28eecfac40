"""Review decisions: claims on traces, approve / edit / reject / return / re-expand, undo."""

from contextlib import suppress
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from annotator import roles
from annotator.claims import claim_first
from annotator.services import AnnotationLocked, annotation_return
from expansion.models import LLMEndpoint, PromptVersion, Trace
from expansion.services import traces_request

from .models import Decision, Reason, ReviewDecision, TraceReview
from .ratings.steps import trace_steps_split
from .selectors import review_queue

CLAIM_MINUTES = 30
# The review page offers an undo this long after an approval or a rejection; the server
# accepts it a little longer, so that a click at the last moment over a slow network counts.
UNDO_SECONDS = 5
UNDO_ACCEPTED = timedelta(seconds=UNDO_SECONDS + 25)
UNDOABLE = (Decision.APPROVE, Decision.REJECT)


class ReviewRefused(Exception):
    """The decision breaks a rule; the message says which."""


class OwnAnnotation(ReviewRefused, roles.OwnAnnotation):
    """The rule of annotator/roles.py, also a refused decision for the review page's message."""


def _check_reviewer(trace: Trace, reviewer) -> None:
    try:
        roles.refuse_own_annotation(
            reviewer, annotator_id=trace.annotation.annotator_id, doing="review a trace of"
        )
    except roles.OwnAnnotation as exc:
        raise OwnAnnotation(str(exc)) from exc
    if trace.status != Trace.Status.SUCCEEDED:
        raise ReviewRefused(gettext("Only a succeeded trace can be reviewed."))


def _claim(trace: Trace, reviewer) -> TraceReview:
    review, _ = TraceReview.objects.select_for_update().get_or_create(trace=trace)
    now = timezone.now()
    if (
        review.claimed_by_id not in (None, reviewer.pk)
        and review.claim_expires_at
        and review.claim_expires_at > now
    ):
        raise ReviewRefused(gettext("%(name)s is reviewing this trace right now.")
                            % {"name": review.claimed_by})  # fmt: skip
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

    def take(trace: Trace) -> Trace | None:
        try:
            # Reads the review row again under its lock: another reviewer may have claimed
            # the trace since the queue was read.
            _claim(trace, reviewer)
        except ReviewRefused:
            return None
        return trace

    return claim_first(review_queue(reviewer=reviewer, unclaimed_only=True, **filters), take)


def _lines(text: str) -> str:
    """One line ending: browsers send a textarea's lines ending in CRLF whatever they held."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
    if decision not in Decision.values or decision == Decision.UNDO:
        raise ReviewRefused(gettext("Unknown decision %(decision)r.") % {"decision": decision})
    if reason and reason not in Reason.values:
        raise ReviewRefused(gettext("Unknown reason %(reason)r.") % {"reason": reason})
    if decision == Decision.REJECT and not reason:
        raise ReviewRefused(gettext("Rejecting needs a reason code."))
    if decision == Decision.RETURN and not comment.strip():
        raise ReviewRefused(gettext("Returning needs a comment for the annotator."))
    edited_thought, edited_solution = _lines(edited_thought), _lines(edited_solution)
    if (edited_thought or edited_solution) and decision != Decision.APPROVE:
        raise ReviewRefused(gettext("Edits go with an approval (edit, then approve)."))
    review = _claim(trace, reviewer)
    if review.status != TraceReview.Status.PENDING:
        raise ReviewRefused(gettext("This trace was already decided (%(status)s).")
                            % {"status": review.get_status_display().lower()})  # fmt: skip
    if (
        decision == Decision.APPROVE
        and ReviewDecision.objects.filter(
            trace=trace, reviewer=reviewer, decision=Decision.APPROVE, undone_by__isnull=True
        ).exists()
    ):
        raise ReviewRefused(gettext("You already approved this trace; it needs another reviewer."))

    before_thought, before_solution = review.thought, review.solution
    record = ReviewDecision(
        trace=trace, reviewer=reviewer, decision=decision, reason=reason, comment=comment,
        thought_before=before_thought, solution_before=before_solution,
    )  # fmt: skip
    now = timezone.now()
    if decision == Decision.APPROVE:
        if edited_thought and edited_thought != _lines(before_thought):
            review.edited_thought = record.thought_after = edited_thought
        if edited_solution and edited_solution != _lines(before_solution):
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
    if record.thought_after:
        trace_steps_split(trace_id=trace.pk, thought=review.thought)  # the steps follow the edit
    return record


@transaction.atomic
def review_undo(*, decision_id: int, reviewer) -> ReviewDecision:
    """Take back one's own approval or rejection within moments of making it.

    The undo is a decision of its own (the history keeps both); it puts the trace's review
    back as it was before the decision: pending, with that approval and its edit withdrawn.
    """
    try:
        undone = ReviewDecision.objects.select_related("trace").get(pk=decision_id)
    except ReviewDecision.DoesNotExist as exc:
        raise ReviewRefused(gettext("No such decision.")) from exc
    trace = undone.trace
    review = TraceReview.objects.select_for_update().get(trace=trace)
    latest = ReviewDecision.objects.filter(trace=trace).order_by("-created_at", "-pk").first()
    if undone.reviewer_id != reviewer.pk:
        raise ReviewRefused(gettext("Only the reviewer who made a decision can undo it."))
    if undone.decision not in UNDOABLE:
        raise ReviewRefused(gettext("A decision to %(decision)s cannot be undone.")
                            % {"decision": undone.get_decision_display().lower()})  # fmt: skip
    if latest != undone:
        raise ReviewRefused(
            gettext("Another decision followed this one; it can no longer be undone.")
        )
    if undone.created_at < timezone.now() - UNDO_ACCEPTED:
        raise ReviewRefused(gettext("Too late to undo this decision."))

    record = ReviewDecision(
        trace=trace, reviewer=reviewer, decision=Decision.UNDO, undoes=undone,
        thought_before=review.thought, solution_before=review.solution,
    )  # fmt: skip
    if undone.decision == Decision.APPROVE:
        review.approvals = max(review.approvals - 1, 0)
        # Before the decision the text was its thought_before: an edit of the trace's own text
        # or that text itself (then no edit is kept).
        if undone.thought_after:
            review.edited_thought = _unless_original(undone.thought_before, trace.thought)
            record.thought_after = review.thought
        if undone.solution_after:
            review.edited_solution = _unless_original(undone.solution_before, trace.solution)
            record.solution_after = review.solution
    review.status, review.decided_at = TraceReview.Status.PENDING, None
    review.save()
    record.save()
    if undone.thought_after:
        trace_steps_split(trace_id=trace.pk, thought=review.thought)
    with suppress(ReviewRefused):  # back to the reviewer who is looking at it, unless taken
        _claim(trace, reviewer)
    return record


def _unless_original(text: str, original: str) -> str:
    return "" if text == original else text


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
