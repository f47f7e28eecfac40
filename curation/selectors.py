from django.db.models import Q, QuerySet
from django.utils import timezone

from expansion.models import Trace

from .models import TraceReview

CHECK_FILTERS = {
    "answer_mismatch": "flag_answer_mismatch",
    "low_coverage": "flag_low_coverage",
    "too_short": "flag_too_short",
    "leakage": "flag_leakage",
    "truncated": "flag_truncated",
}


def review_queue(
    *,
    reviewer=None,
    checks: list[str] | None = None,
    subject: str = "",
    level: int | None = None,
    endpoint: int | None = None,
    prompt: int | None = None,
    annotator: int | None = None,
    since=None,
    until=None,
    text: str = "",
    unclaimed_only: bool = False,
) -> QuerySet[Trace]:
    """Succeeded traces awaiting a decision, oldest first, with the queue's filters."""
    traces = Trace.objects.filter(status=Trace.Status.SUCCEEDED).filter(
        Q(review__isnull=True) | Q(review__status=TraceReview.Status.PENDING)
    )
    if reviewer is not None:
        traces = traces.exclude(annotation__annotator=reviewer)
    if unclaimed_only:
        now = timezone.now()
        traces = traces.filter(
            Q(review__isnull=True)
            | Q(review__claimed_by__isnull=True)
            | Q(review__claim_expires_at__lt=now)
            | Q(review__claimed_by=reviewer)
        )
    for name in checks or []:
        traces = traces.filter(**{CHECK_FILTERS[name]: True})
    if subject:
        traces = traces.filter(annotation__problem__subject=subject)
    if level is not None:
        traces = traces.filter(annotation__problem__level=level)
    if endpoint:
        traces = traces.filter(endpoint_id=endpoint)
    if prompt:
        traces = traces.filter(prompt_id=prompt)
    if annotator:
        traces = traces.filter(annotation__annotator_id=annotator)
    if since:
        traces = traces.filter(created_at__gte=since)
    if until:
        traces = traces.filter(created_at__lt=until)
    if text:
        traces = traces.filter(thought__icontains=text)
    return traces.order_by("created_at", "pk")
