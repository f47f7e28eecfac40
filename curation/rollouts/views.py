"""A problem's rollout samples as a reviewer reads them, and an admin's check of a dispute."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from annotator.models import Problem
from annotator.roles import Role, role_required
from expansion.markers import DEFAULT_LANGUAGE
from expansion.models import ProblemDifficulty, RolloutCampaign, RolloutSample
from expansion.parsing import thought_paragraphs
from expansion.rollouts.disputes import NotDisputed, difficulty_dispute_check

from .. import presentation

SAMPLES_PER_PAGE = 10
VERDICTS = [value for value, _label in RolloutSample.Verdict.choices]


def _sample_html(samples: list[RolloutSample]) -> None:
    """Each sample's thought paragraphs and solution rendered sanitized as the review page
    renders a trace (markers highlighted, from the rendering cache), set on the sample."""
    for sample in samples:
        language = sample.checks.get("thought_language") or DEFAULT_LANGUAGE
        texts = [*thought_paragraphs(sample.thought), sample.solution]
        *paragraphs, solution = presentation.render_paragraphs(texts, language)
        sample.paragraphs = [{"number": n, "html": h} for n, h in enumerate(paragraphs, 1)]
        sample.solution_html = solution


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def samples(request, problem_id: int, campaign_id: int):
    problem = get_object_or_404(Problem, pk=problem_id)
    campaign = get_object_or_404(RolloutCampaign.objects.select_related("endpoint"), pk=campaign_id)
    verdict = request.GET.get("verdict", "")
    listed = RolloutSample.objects.filter(problem=problem, campaign=campaign).order_by(
        "sample_index", "pk"
    )
    if verdict in VERDICTS:
        listed = listed.filter(verdict=verdict)
    page = Paginator(listed, SAMPLES_PER_PAGE).get_page(request.GET.get("page"))
    _sample_html(page.object_list)
    return render(request, "curation/samples.html", {
        "problem": problem, "campaign": campaign, "page": page, "verdict": verdict,
        "verdicts": RolloutSample.Verdict.choices,
        "difficulty": ProblemDifficulty.objects.filter(problem=problem, campaign=campaign)
        .select_related("dispute_checked_by").first(),
    })  # fmt: skip


@require_POST
@role_required(Role.ADMIN)
def dispute_checked(request, problem_id: int, campaign_id: int):
    try:
        difficulty_dispute_check(problem_id=problem_id, campaign_id=campaign_id, user=request.user)
    except ProblemDifficulty.DoesNotExist:
        return HttpResponse(_("This campaign has no figures for this problem."), status=404)
    except NotDisputed as exc:
        return HttpResponse(str(exc), status=409)
    messages.success(request, _("The disputed reference answer is marked checked."))
    return redirect("problem-detail", problem_id)
