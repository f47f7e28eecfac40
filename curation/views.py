from functools import partial

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from annotator.roles import Role, role_required
from annotator.selectors import benchmarks_overview
from expansion.filters import CHECK_CHOICES
from expansion.markers import DEFAULT_LANGUAGE
from expansion.models import LLMEndpoint, PromptVersion, Trace
from expansion.selectors import filter_choices, trace_norms

from . import presentation, services
from .api import ReviewSerializer
from .filters import JUDGE_CHOICES, QueueFilterForm
from .judging.selectors import judgement, latest_judge_job
from .models import Reason, ReviewDecision, TraceReview
from .ratings import selectors as ratings_selectors
from .ratings import views as ratings_views
from .selectors import (
    COUNTS_SECONDS,
    QueuePaginator,
    judge_found,
    queue_counts,
    review_queue,
    with_judge_findings,
)

PER_PAGE = 25
# A decision as the messages name it (its stored value, in the interface language).
DECISION_WORDS = {
    "approve": gettext_lazy("approve"),
    "reject": gettext_lazy("reject"),
    "return": gettext_lazy("return"),
    "reexpand": gettext_lazy("reexpand"),
}


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def queue(request):
    form = QueueFilterForm.bind(request.GET)
    filters = form.page_filters(request)
    form.offer_choices(filter_choices())
    chosen = filters.get("checks", [])
    traces = review_queue(reviewer=request.user, **filters)
    without_checks = review_queue(
        reviewer=request.user, **{k: v for k, v in filters.items() if k != "checks"}
    )
    # One aggregate gives the badge counts and the paginator's count.
    counts = queue_counts(
        without_checks,
        total=Count("pk"),
        matching=Count("pk", filter=Q(**{Trace.FLAGS[name]: True for name in chosen}))
        if chosen
        else Count("pk"),
        **{name: Count("pk", filter=Q(**{field: True})) for name, field in Trace.FLAGS.items()},
        **{f"judge_{name}": Count("pk", filter=judge_found(name)) for name, _ in JUDGE_CHOICES},
    )
    rows = with_judge_findings(
        Trace.objects.select_related(
            "annotation__problem", "annotation__annotator", "endpoint", "prompt"
        ).defer(*Trace.LONG_TEXTS)
    )
    paginator = QueuePaginator(traces, PER_PAGE, rows=rows)
    paginator.count = counts["matching"]
    page = paginator.get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    checks = [{"name": name, "label": label, "count": counts[name], "checked": name in chosen}
              for name, label in CHECK_CHOICES]  # fmt: skip
    judged = filters.get("judge", [])
    judge = [{"name": name, "label": label, "count": counts[f"judge_{name}"],
              "checked": name in judged} for name, label in JUDGE_CHOICES]  # fmt: skip
    return render(request, "curation/queue.html", {
        "page": page, "counts": counts, "checks": checks, "judge": judge,
        "query": query.urlencode(),
        "form": form, "params": request.GET, "counts_seconds": COUNTS_SECONDS,
    })  # fmt: skip


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def next_item(request):
    form = QueueFilterForm.bind(request.POST)
    filters = form.page_filters(request)
    trace = services.review_next(reviewer=request.user, **filters)
    if trace is None:
        messages.info(request, gettext("Nothing left to review with these filters."))
        return redirect("review-queue")
    return redirect("review-trace", trace.pk)


def _decision_word(record) -> str:
    return str(DECISION_WORDS.get(record.decision, record.decision))


def _trace(trace_id: int) -> Trace:
    try:
        return Trace.objects.select_related(
            "annotation__problem", "annotation__annotator", "endpoint", "prompt"
        ).get(pk=trace_id)
    except Trace.DoesNotExist as exc:
        raise Http404("No such trace.") from exc


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def review(request, trace_id: int):
    """The review page; opening it claims the trace for this reviewer."""
    return _review_page(request, _trace(trace_id))


def _review_page(request, trace: Trace, status: int = 200):
    claim_error = ""
    try:
        review_state = services.review_claim(trace_id=trace.pk, reviewer=request.user)
    except services.ReviewRefused as exc:
        claim_error = str(exc)
        review_state = TraceReview.objects.filter(trace=trace).first()
    thought = review_state.thought if review_state else trace.thought
    solution = review_state.solution if review_state else trace.solution
    decisions = list(trace.decisions.select_related("reviewer", "undoes"))
    for decision in decisions:
        if decision.edited:
            decision.diff = presentation.text_diff(
                decision.thought_before + "\n\n" + decision.solution_before,
                (decision.thought_after or decision.thought_before) + "\n\n"
                + (decision.solution_after or decision.solution_before),
            )  # fmt: skip
    rating_mode = request.GET.get("mode") == "steps" and trace.status == Trace.Status.SUCCEEDED
    links = presentation.step_links(trace, thought)
    language = (trace.checks.get("language") or {}).get("trace") or DEFAULT_LANGUAGE
    steps = split = judged = judge_job = None
    if rating_mode:
        split, standing = ratings_selectors.trace_steps(trace, rater=request.user)
        judged, judge_job = judgement(trace), latest_judge_job(trace)
        render_steps = partial(presentation.render_paragraphs, language=language)
        steps = ratings_views.step_rows(request, trace, standing, render_steps, judged)
        lost = set(ratings_selectors.lost_record_steps(trace, rater=request.user)
                   .values_list("record_step", flat=True))  # fmt: skip
        for link in links:
            link["lost"] = link["number"] in lost
    siblings = (
        Trace.objects.filter(annotation=trace.annotation)
        .exclude(pk=trace.pk)
        .only("pk", "status", "sample_index")
    )
    return render(request, "curation/review.html", {
        "trace": trace, "annotation": trace.annotation, "problem": trace.annotation.problem,
        "review": review_state, "claim_error": claim_error, "thought": thought,
        "solution": solution, "links": links,
        "paragraphs": [] if rating_mode else presentation.render_thought(thought, language),
        "norms": trace_norms(trace) if trace.status == Trace.Status.SUCCEEDED else {},
        "decisions": decisions, "reasons": [r for r in Reason if r.value],
        "prompts": PromptVersion.objects.all()[:50],
        "endpoints": LLMEndpoint.objects.filter(is_active=True),
        "siblings": siblings, "rating_mode": rating_mode, "steps": steps, "split": split,
        "judged": judged, "judge_job": judge_job,
        "decidable": not claim_error and (
            review_state is None or review_state.status == TraceReview.Status.PENDING),
    }, status=status)  # fmt: skip


def _form_errors(errors: dict) -> str:
    """A serializer's errors as one sentence a reviewer can act on."""
    return " ".join(
        f"{field.replace('_', ' ').capitalize()}: {' '.join(map(str, messages_))}"
        for field, messages_ in errors.items()
    )


def _refused(request, trace: Trace, message: str):
    """A 400 that says why: in the decision bar for htmx, else the review page with a message."""
    if request.htmx:
        response = render(request, "curation/_decision_message.html", {"message": message},
                          status=400)  # fmt: skip
        return reswap(retarget(response, "#decision-messages"), "innerHTML")
    messages.error(request, message)
    return _review_page(request, trace, status=400)


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def decide(request, trace_id: int):
    """Record a decision. From the page's htmx bar an approval or rejection stays undoable for
    a few seconds (the bar says so, then the next trace opens); otherwise the next trace opens."""
    trace = _trace(trace_id)
    form = ReviewSerializer(data={key: value for key, value in request.POST.items() if value})
    if not form.is_valid():
        return _refused(request, trace, _form_errors(form.errors))
    try:
        record = services.review_decide(
            trace_id=trace.pk, reviewer=request.user, **form.decision_arguments()
        )
    except services.ReviewRefused as exc:
        return _refused(request, trace, str(exc))
    if request.htmx and record.decision in services.UNDOABLE:
        return render(request, "curation/_decision_done.html", {
            "record": record, "undo_seconds": services.UNDO_SECONDS})  # fmt: skip
    recorded = gettext("Trace #%(id)s: %(decision)s recorded.")
    messages.success(request, recorded % {"id": trace.pk, "decision": _decision_word(record)})
    following = services.review_next(reviewer=request.user)
    target = reverse("review-trace", args=[following.pk]) if following else reverse("review-queue")
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def undo(request, decision_id: int):
    """Take back one's approval or rejection; the trace's page opens again, awaiting review."""
    record = ReviewDecision.objects.filter(pk=decision_id).first()
    if record is None:
        raise Http404("No such decision.")
    trace = _trace(record.trace_id)
    try:
        services.review_undo(decision_id=record.pk, reviewer=request.user)
    except services.ReviewRefused as exc:
        return _refused(request, trace, str(exc))
    undone = gettext("Trace #%(id)s: your %(decision)s was undone.")
    messages.success(request, undone % {"id": trace.pk, "decision": _decision_word(record)})
    target = reverse("review-trace", args=[trace.pk])
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


@require_POST
@role_required(Role.REVIEWER, Role.ADMIN)
def pick_best(request, trace_id: int):
    trace = _trace(trace_id)
    try:
        services.review_pick_best(trace_id=trace.pk, reviewer=request.user)
    except services.ReviewRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, gettext("Trace #%(id)s is now ranked first of its annotation.")
                         % {"id": trace.pk})  # fmt: skip
    return redirect("review-trace", trace.pk)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def exports(request):
    """Start an export (format, style, filters) and see past ones with their checksums."""
    from .api_exports import ExportRequestSerializer, start_from
    from .exports.prm import LABELS, NEUTRAL
    from .exports.records import FORMATS, PAIR_LAYOUTS, STYLES
    from .exports.rollouts import PICKS
    from .models import Export

    errors = {}
    benchmarks = benchmarks_overview()
    if request.method == "POST":
        data = {key: value for key, value in request.POST.items() if value != ""}
        form = ExportRequestSerializer(data=data)
        if form.is_valid():
            export = start_from(dict(form.validated_data), request.user)
            messages.success(
                request, gettext("Export %(id)s queued; it runs on a worker.") % {"id": export.pk}
            )
            return redirect("exports")
        errors = form.errors
    return render(request, "curation/exports.html", {
        "exports": Export.objects.all()[:50], "errors": errors, "post": request.POST,
        "formats": FORMATS, "styles": STYLES, "labels": LABELS, "neutral": NEUTRAL,
        "record_sources": ["traces", "rollouts", "traces,rollouts"], "picks": PICKS,
        "pair_layouts": PAIR_LAYOUTS,
        "benchmarks": benchmarks, "benchmark_names": [row["name"] for row in benchmarks],
    })  # fmt: skip


@require_GET
@role_required(Role.ADMIN)
def export_download(request, export_id: int):
    from django.http import FileResponse

    from .models import Export

    export = Export.objects.filter(pk=export_id, status=Export.Status.SUCCEEDED).first()
    if export is None or not export.archive.exists():
        raise Http404("No files for this export.")
    return FileResponse(export.archive.open("rb"), as_attachment=True,
                        filename=f"export-{export.pk}.zip")  # fmt: skip
