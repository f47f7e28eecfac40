"""Reading a trace's steps with their ratings, in a fixed number of queries."""

from django.db.models import Prefetch, QuerySet

from expansion.models import Trace

from ..models import LostRecordStep, StepRating, StepSplit, TraceStep
from .steps import trace_steps_ensure


def trace_steps(trace: Trace, *, rater=None) -> tuple[StepSplit, QuerySet[TraceStep]]:
    """The trace's standing steps in order, each with its ratings (only ``rater``'s when
    given) prefetched as ``rating_list``; the split is made first when it is missing."""
    split = trace_steps_ensure(trace)
    if rater is None:
        ratings = StepRating.objects.select_related("rater").order_by("rater_id")
    else:  # the rater is known: no join, and no user built per rating
        ratings = StepRating.objects.filter(rater=rater)
    steps = (
        TraceStep.objects.filter(trace=trace, retired_at__isnull=True)
        .order_by("number")
        .prefetch_related(Prefetch("ratings", queryset=ratings, to_attr="rating_list"))
    )
    return split, steps


def lost_record_steps(trace: Trace, *, rater=None) -> QuerySet[LostRecordStep]:
    marks = LostRecordStep.objects.filter(trace=trace).select_related("rater")
    return marks.filter(rater=rater) if rater is not None else marks
