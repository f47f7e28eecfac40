"""The review page's judge buttons: ask the judge, take its ratings as one's own."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, role_required
from expansion.models import Trace

from ..ratings.services import RaterRefused, RatingRefused
from . import services
from .selectors import latest_judge_job


def _back(trace_id: int):
    return redirect(f"/review/{trace_id}/?mode=steps")


def _trace_id(trace_id: int) -> int:
    if not Trace.objects.filter(pk=trace_id).exists():
        raise Http404("No such trace.")
    return trace_id


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def ask(request, trace_id: int):
    """Queue a judge job for the trace's steps (the one already made, if it was asked)."""
    try:
        job, created = services.judge_request(trace_id=_trace_id(trace_id),
                                              requested_by=request.user)  # fmt: skip
    except services.JudgeRefused as exc:
        messages.error(request, str(exc))
    else:
        if created:
            messages.success(
                request,
                gettext("Judge job %(job)s queued; its ratings appear here.") % {"job": job.pk},
            )
        else:
            messages.info(
                request,
                gettext("The judge was already asked (job %(job)s, %(status)s).")
                % {"job": job.pk, "status": job.get_status_display()},
            )
    return _back(trace_id)


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def accept(request, trace_id: int):
    """Take the judge's ratings as one's own for the steps one has not rated."""
    try:
        saved = services.judge_accept_all(trace_id=_trace_id(trace_id), rater=request.user)
    except RaterRefused:
        raise
    except RatingRefused as exc:
        messages.error(request, str(exc))
    else:
        accepted = ngettext(
            "The judge's ratings of %(count)s step are now yours; steps you had rated keep "
            "your rating.",
            "The judge's ratings of %(count)s steps are now yours; steps you had rated keep "
            "your rating.",
            saved,
        )
        messages.success(request, accepted % {"count": saved})
    return _back(trace_id)


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def state(request, trace_id: int):
    """The latest judge job's state, which the review page asks for while the job runs."""
    trace = Trace.objects.filter(pk=trace_id).first()
    if trace is None:
        raise Http404("No such trace.")
    context = {"judge_job": latest_judge_job(trace), "trace_id": trace.pk, "polled": True}
    return render(request, "curation/_judge_state.html", context)
