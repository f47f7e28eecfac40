from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..forms import ProblemFilterForm
from ..roles import Role, role_required
from ..selectors import problem_facets, problem_list

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
