import hashlib

from django.contrib.postgres.search import SearchQuery
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import Aggregate, Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

from annotator.models import Annotation
from expansion.models import Trace

from .models import TraceReview

COUNTS_SECONDS = 10


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
    decided = TraceReview.objects.filter(trace=OuterRef("pk")).exclude(
        status=TraceReview.Status.PENDING
    )
    # Anti-joins rather than outer joins: counting the queue then reads one covering index.
    traces = Trace.objects.filter(status=Trace.Status.SUCCEEDED).exclude(Exists(decided))
    if reviewer is not None:
        traces = traces.exclude(annotation__in=Annotation.objects.filter(annotator=reviewer))
    if unclaimed_only:
        now = timezone.now()
        traces = traces.filter(
            Q(review__isnull=True)
            | Q(review__claimed_by__isnull=True)
            | Q(review__claim_expires_at__lt=now)
            | Q(review__claimed_by=reviewer)
        )
    for name in checks or []:
        traces = traces.filter(**{Trace.FLAGS[name]: True})
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
        traces = with_text(traces, text)
    return traces.order_by("created_at", "pk")


def with_text(traces: QuerySet[Trace], text: str) -> QuerySet[Trace]:
    """Traces whose thought or solution has all these words (PostgreSQL, indexed; any case),
    or contains this text (other databases)."""
    if connections[traces.db].vendor == "postgresql":
        return traces.filter(search=SearchQuery(text, config="simple"))
    return traces.filter(Q(thought__icontains=text) | Q(solution__icontains=text))


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
