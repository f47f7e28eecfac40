from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from ..difficulty import campaigns_with_difficulties, problem_difficulties, with_difficulty
from ..forms import ProblemFilterForm
from ..models import Problem
from ..roles import Role, has_role, role_required
from ..selectors import (
    problem_contaminations,
    problem_facets,
    problem_list,
    problem_near_duplicates,
)

PROBLEMS_PER_PAGE = 25


def _chosen_campaign(form: ProblemFilterForm, campaigns: list):
    """The campaign asked for (``campaign=<id>``) among those with figures, else the latest."""
    form.is_valid()
    wanted = form.cleaned_data.get("campaign")
    return next((c for c in campaigns if c.pk == wanted), campaigns[0] if campaigns else None)


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def problems(request):
    form = ProblemFilterForm(request.GET)
    campaigns = campaigns_with_difficulties()
    campaign = _chosen_campaign(form, campaigns)
    listed = problem_list(**form.selector_kwargs())
    if campaign is not None:
        listed = with_difficulty(listed, campaign_id=campaign.pk, **form.difficulty_kwargs())
    page = Paginator(listed, PROBLEMS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form, "page": page, "query": query.urlencode(),
        "campaigns": campaigns, "campaign": campaign, **problem_facets(),
    }  # fmt: skip
    if request.htmx and request.htmx.target == "problem-results":
        return render(request, "annotator/_problem_results.html", context)
    return render(request, "annotator/problem_list.html", context)


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def problem_detail(request, problem_id: int):
    problem = get_object_or_404(Problem, pk=problem_id)
    return render(request, "annotator/problem_detail.html", {
        "problem": problem,
        "contaminations": problem_contaminations(problem),
        "near_duplicates": problem_near_duplicates(problem),
        "difficulties": problem_difficulties(problem),
        "can_check_disputes": has_role(request.user, Role.ADMIN),
    })  # fmt: skip
