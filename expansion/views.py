from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, role_required

from .filters import TraceFilterForm
from .models import Trace
from .selectors import filter_choices, traces_matching
from .services import trace_cancel

TRACES_PER_PAGE = 50


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def trace_list(request):
    form = TraceFilterForm.bind(request.GET)
    traces = traces_matching(**form.page_filters(request))
    form.offer_choices(filter_choices())
    traces = traces.select_related("endpoint", "prompt", "annotation__problem", "batch").defer(
        *Trace.LONG_TEXTS
    )
    page = Paginator(traces.order_by("-created_at", "-pk"), TRACES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "form": form,
        # The table refreshes itself while a job on it is queued or running.
        "live": any(not trace.is_finished for trace in page),
    }
    return render(request, "expansion/trace_list.html", context)


def _trace(trace_id: int) -> Trace:
    return get_object_or_404(
        Trace.objects.select_related("endpoint", "prompt", "annotation__problem", "batch"),
        pk=trace_id,
    )


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def trace_detail(request, trace_id: int):
    return render(request, "expansion/trace_detail.html", {"trace": _trace(trace_id)})


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def trace_progress(request, trace_id: int):
    """The live part of the trace page; htmx polls it while the job runs."""
    return render(request, "expansion/_trace_progress.html", {"trace": _trace(trace_id)})


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def trace_cancel_view(request, trace_id: int):
    trace = _trace(trace_id)
    if trace_cancel(trace_id=trace.pk):
        messages.success(
            request, _("Trace %(id)s is cancelled; it will not be retried.") % {"id": trace.pk}
        )
    else:
        trace.refresh_from_db(fields=["status"])
        messages.error(
            request,
            _("Trace %(id)s has finished (%(status)s): nothing to cancel.")
            % {"id": trace.pk, "status": trace.status},
        )
    return redirect("trace-detail", trace_id=trace.pk)
