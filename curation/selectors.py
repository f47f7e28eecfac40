import hashlib
from datetime import date, datetime, time

from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db.models import (
    Aggregate,
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.functional import cached_property

from annotator.models import Annotation
from expansion.models import Trace
from expansion.selectors import traces_matching

from .models import JudgeJob, ReviewDecision, TraceReview

COUNTS_SECONDS = 10


def review_is(state: str) -> Q:
    """Traces whose review stands so. ``pending`` (or ``awaiting``): succeeded, no decision
    yet; the others are the status of the last decision."""
    if state in ("pending", "awaiting"):
        return Q(status=Trace.Status.SUCCEEDED) & (
            Q(review__isnull=True) | Q(review__status=TraceReview.Status.PENDING)
        )
    return Q(review__status=state)


def traces_reviewed(
    *,
    review: str = "",
    reviewer: int | None = None,
    decided_since: date | None = None,
    decided_until: date | None = None,
    **filters,
) -> QuerySet[Trace]:
    """``traces_matching(**filters)`` narrowed by review: its state, who decided, when."""
    traces = traces_matching(**filters)
    if review:
        traces = traces.filter(review_is(review))
    if decided_since:
        traces = traces.filter(review__decided_at__gte=_midnight(decided_since))
    if decided_until:
        traces = traces.filter(review__decided_at__lt=_midnight(decided_until))
    if reviewer:
        decisions = ReviewDecision.objects.filter(trace=OuterRef("pk"), reviewer_id=reviewer)
        traces = traces.filter(Exists(decisions))
    return traces


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def with_review_state(traces: QuerySet[Trace]) -> QuerySet[Trace]:
    """The traces with their review as annotations (``review_status``, ``review_approvals``,
    ``review_rank``, ``review_edited``), read in the same query as the traces."""
    edited = Q(review__edited_thought__gt="") | Q(review__edited_solution__gt="")
    return traces.annotate(
        review_status=Coalesce(F("review__status"), Value(TraceReview.Status.PENDING)),
        review_approvals=Coalesce(F("review__approvals"), 0),
        review_rank=F("review__rank"),
        review_edited=Case(When(edited, then=True), default=False, output_field=BooleanField()),
    )


def judge_found(finding: str) -> Q:
    """Traces in which a succeeded judge job found this (``failed``: a failed judge job and
    none succeeded)."""
    jobs = JudgeJob.objects.filter(trace=OuterRef("pk"))
    succeeded = jobs.filter(status=JudgeJob.Status.SUCCEEDED)
    if finding == "failed":
        return Q(Exists(jobs.filter(status=JudgeJob.Status.FAILED))) & ~Q(Exists(succeeded))
    return Q(Exists(succeeded.filter(**{f"found_{finding}": True})))


def with_judge_findings(traces: QuerySet[Trace]) -> QuerySet[Trace]:
    """Each trace with ``judge_<finding>`` for every finding of JUDGE_CHOICES."""
    from .filters import JUDGE_CHOICES

    return traces.annotate(**{f"judge_{name}": judge_found(name) for name, _ in JUDGE_CHOICES})


def review_queue(
    *, reviewer=None, unclaimed_only: bool = False, judge: list[str] = (), **filters
) -> QuerySet[Trace]:
    """Succeeded traces awaiting a decision, oldest first, narrowed by ``traces_matching``'s
    filters (those of QueueFilterForm) and what the step judge found, never the reviewer's
    own."""
    decided = TraceReview.objects.filter(trace=OuterRef("pk")).exclude(
        status=TraceReview.Status.PENDING
    )
    # Anti-joins rather than outer joins: counting the queue then reads one covering index.
    traces = traces_matching(status=Trace.Status.SUCCEEDED, **filters).exclude(Exists(decided))
    if reviewer is not None:
        traces = traces.exclude(annotation__in=Annotation.objects.filter(annotator=reviewer))
    for finding in judge:
        traces = traces.filter(judge_found(finding))
    if unclaimed_only:
        now = timezone.now()
        traces = traces.filter(
            Q(review__isnull=True)
            | Q(review__claimed_by__isnull=True)
            | Q(review__claim_expires_at__lt=now)
            | Q(review__claimed_by=reviewer)
        )
    return traces.order_by("created_at", "pk")


def queue_counts(traces: QuerySet[Trace], **aggregates: Aggregate) -> dict:
    """``traces.aggregate(**aggregates)`` and ``counted_at``, kept for COUNTS_SECONDS.

    Counting reads every trace that matches (for a common word, tens of thousands of rows):
    the pages of the same filters, the same reviewer, reuse the figures meanwhile.
    """
    sql, params = traces.query.sql_with_params()
    digest = hashlib.sha256(repr((sql, params, sorted(aggregates.items()))).encode())
    key = f"review-queue-counts:{digest.hexdigest()}"
    counts = cache.get(key)
    if counts is None:
        counts = {**traces.aggregate(**aggregates), "counted_at": timezone.now()}
        cache.set(key, counts, COUNTS_SECONDS)
    return counts


class QueuePaginator(Paginator):
    """Reads a page of the queue in two steps: the ids of its traces, then their rows.

    With a plain OFFSET, PostgreSQL reads and joins every row before the page; the ids alone
    come from the queue's covering index, so a deep page costs about what the first does.
    ``rows`` is what the page's traces are read with (joins, deferred texts). The count is
    kept for COUNTS_SECONDS (``queue_counts``): it numbers the pages, but never cuts one short.
    """

    def __init__(self, object_list, per_page, *, rows: QuerySet[Trace] | None = None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.rows = Trace.objects.defer(*Trace.LONG_TEXTS) if rows is None else rows

    @cached_property
    def count(self) -> int:
        return queue_counts(self.object_list, count=Count("pk"))["count"]

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = self.object_list.values("pk")[bottom : bottom + self.per_page]
        traces = self.rows.filter(pk__in=ids).order_by(*self.object_list.query.order_by)
        return self._get_page(traces, number, self)
