from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, role_required

from .models import LLMEndpoint, PromptVersion, Trace
from .services import trace_cancel

TRACES_PER_PAGE = 50


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def trace_list(request):
    traces = Trace.objects.select_related("endpoint", "prompt", "annotation__problem").defer(
        *Trace.LONG_TEXTS
    )
    wanted = request.GET.get("status", "")
    if wanted in Trace.Status.values:
        traces = traces.filter(status=wanted)
    chosen = {}
    for param, field in (("annotation", "annotation_id"), ("endpoint", "endpoint_id"),
                         ("prompt", "prompt_id")):  # fmt: skip
        value = chosen[param] = request.GET.get(param, "")
        if value.isdigit() and len(value) < 19:
            traces = traces.filter(**{field: value})
    page = Paginator(traces.order_by("-created_at", "-pk"), TRACES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {
        "page": page,
        "statuses": Trace.Status.values,
        "wanted": wanted,
        **chosen,
        "endpoints": LLMEndpoint.objects.order_by("name").values_list("pk", "name"),
        "prompts": PromptVersion.objects.order_by("name", "-version"),
        # The table refreshes itself while a job on it is queued or running.
        "live": any(not trace.is_finished for trace in page),
    }
    return render(request, "expansion/trace_list.html", context)


def _trace(trace_id: int) -> Trace:
    return get_object_or_404(
        Trace.objects.select_related("endpoint", "prompt", "annotation__problem"), pk=trace_id
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
        messages.success(request, f"Trace {trace.pk} is cancelled; it will not be retried.")
    else:
        trace.refresh_from_db(fields=["status"])
        messages.error(
            request, f"Trace {trace.pk} has finished ({trace.status}): nothing to cancel."
        )
    return redirect("trace-detail", trace_id=trace.pk)
