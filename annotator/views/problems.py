from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from ..forms import ProblemFilterForm
from ..models import Problem
from ..roles import Role, role_required
from ..selectors import (
    problem_contaminations,
    problem_facets,
    problem_list,
    problem_near_duplicates,
)

PROBLEMS_PER_PAGE = 25


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def problems(request):
    form = ProblemFilterForm(request.GET)
    page = Paginator(problem_list(**form.selector_kwargs()), PROBLEMS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode(), **problem_facets()}
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
    })  # fmt: skip
