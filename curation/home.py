"""The home page: each role's way in, and what became of an annotator's submitted work.

It lives in curation, the app that may read all three (annotator -> expansion -> curation),
so that an annotator sees their traces and review outcomes without annotator importing back.
"""

from dataclasses import dataclass

from django.db.models import Count, Q
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotator.models import Annotation
from annotator.roles import Role, has_role
from annotator.selectors import annotator_worklist
from expansion.models import Trace

from .models import TraceReview


@dataclass(frozen=True)
class WorkOutcome:
    """What became of one annotation: its traces and their review."""

    expanded: int = 0
    in_progress: int = 0
    failed: int = 0
    cancelled: int = 0
    awaiting_review: int = 0
    approved: int = 0
    rejected: int = 0
    returned: int = 0
    reexpanded: int = 0


def _review(status: str) -> Count:
    return Count("pk", filter=Q(review__status=status))


def work_outcomes(*, annotator, annotation_ids: list[int]) -> dict[int, WorkOutcome]:
    """Each of this annotator's annotations (among ``annotation_ids``) with traces: one query."""
    rows = (
        Trace.objects.filter(annotation__annotator=annotator, annotation_id__in=annotation_ids)
        .order_by()
        .values("annotation_id")
        .annotate(
            expanded=Count("pk"),
            in_progress=Count(
                "pk", filter=Q(status__in=[Trace.Status.QUEUED, Trace.Status.RUNNING])
            ),
            failed=Count("pk", filter=Q(status=Trace.Status.FAILED)),
            cancelled=Count("pk", filter=Q(status=Trace.Status.CANCELLED)),
            awaiting_review=Count(
                "pk",
                filter=Q(status=Trace.Status.SUCCEEDED)
                & (Q(review__isnull=True) | Q(review__status=TraceReview.Status.PENDING)),
            ),
            approved=_review(TraceReview.Status.APPROVED),
            rejected=_review(TraceReview.Status.REJECTED),
            returned=_review(TraceReview.Status.RETURNED),
            reexpanded=_review(TraceReview.Status.REEXPANDED),
        )
    )
    return {row.pop("annotation_id"): WorkOutcome(**row) for row in rows}


@require_GET
def home(request):
    context = {}
    if has_role(request.user, Role.ANNOTATOR):
        worklist = annotator_worklist(request.user)
        handed_in = worklist[Annotation.Status.SUBMITTED] + worklist[Annotation.Status.RETURNED]
        outcomes = work_outcomes(
            annotator=request.user, annotation_ids=[annotation.pk for annotation in handed_in]
        )
        for annotation in handed_in:
            annotation.outcome = outcomes.get(annotation.pk, WorkOutcome())
        context["worklist"] = worklist
    return render(request, "home.html", context)
