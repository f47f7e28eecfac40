from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from .models import Annotation, Benchmark, Contamination, NearDuplicate, Problem
from .roles import Role, has_role

ANNOTATION_STATUSES = {
    "none": _("Not annotated"),
    "in_progress": _("In progress"),
    "submitted": _("Submitted"),
}


def problem_list(
    *,
    search: str = "",
    source: str = "",
    subject: str = "",
    level: int | None = None,
    annotation_status: str = "",
    contamination: str = "",
) -> QuerySet[Problem]:
    """Problems matching the list page's filters, in a stable order, with their
    contaminations (and benchmarks) read in one more query.

    ``contamination``: ``clean``, ``contaminated`` (by any benchmark) or a benchmark's name.
    """
    problems = Problem.objects.prefetch_related(
        Prefetch("contaminations", queryset=Contamination.objects.select_related("benchmark"))
    )
    if contamination:
        overlaps = Contamination.objects.filter(problem=OuterRef("pk"))
        if contamination == "clean":
            problems = problems.filter(~Exists(overlaps))
        elif contamination == "contaminated":
            problems = problems.filter(Exists(overlaps))
        else:
            problems = problems.filter(Exists(overlaps.filter(benchmark__name=contamination)))
    if search:
        problems = problems.filter(
            Q(statement__icontains=search) | Q(external_id__icontains=search)
        )
    if source:
        problems = problems.filter(source=source)
    if subject:
        problems = problems.filter(subject=subject)
    if level is not None:
        problems = problems.filter(level=level)
    if annotation_status:
        annotations = Annotation.objects.filter(problem=OuterRef("pk"))
        submitted = annotations.filter(status=Annotation.Status.SUBMITTED)
        if annotation_status == "none":
            problems = problems.filter(~Exists(annotations))
        elif annotation_status == "in_progress":
            problems = problems.filter(Exists(annotations), ~Exists(submitted))
        elif annotation_status == "submitted":
            problems = problems.filter(Exists(submitted))
    return problems.order_by("source", "external_id")


def problem_facets() -> dict[str, list]:
    """The values the list's filter menus offer."""
    distinct = Problem.objects.order_by()
    return {
        "benchmarks": list(Benchmark.objects.values_list("name", flat=True)),
        "sources": list(distinct.values_list("source", flat=True).distinct().order_by("source")),
        "subjects": list(
            distinct.exclude(subject="")
            .values_list("subject", flat=True)
            .distinct()
            .order_by("subject")
        ),
        "levels": list(
            distinct.exclude(level=None)
            .values_list("level", flat=True)
            .distinct()
            .order_by("level")
        ),
    }


def annotations_visible_to(user) -> QuerySet[Annotation]:
    """Annotators see their own annotations; reviewers and admins see all."""
    annotations = Annotation.objects.select_related("problem", "annotator")
    if has_role(user, Role.REVIEWER, Role.ADMIN):
        return annotations
    return annotations.filter(annotator=user)


def annotator_worklist(user) -> dict[str, list[Annotation]]:
    """An annotator's annotations grouped by status, for their home page."""
    groups: dict[str, list[Annotation]] = {"returned": [], "draft": [], "submitted": []}
    for annotation in (
        Annotation.objects.filter(annotator=user)
        .select_related("problem")
        .order_by("-updated_at")[:500]
    ):
        groups[annotation.status].append(annotation)
    return groups


def problem_near_duplicates(problem: Problem) -> list[Problem]:
    """The other problems of the problem's near-duplicate group (none if it has no group)."""
    group = NearDuplicate.objects.filter(problem=problem).values("group")
    return list(
        Problem.objects.filter(near_duplicate__group__in=group)
        .exclude(pk=problem.pk)
        .order_by("source", "external_id")
    )


def problem_contaminations(problem: Problem) -> list[Contamination]:
    return list(problem.contaminations.select_related("benchmark", "item"))


def benchmarks_overview() -> list[dict]:
    """Each benchmark with its item count and how many problems of the bank it contains."""
    total = Problem.objects.count()
    per_benchmark = dict(
        Contamination.objects.order_by().values("benchmark_id").annotate(n=Count("pk"))
        .values_list("benchmark_id", "n")
    )  # fmt: skip
    rows = []
    for benchmark in Benchmark.objects.annotate(item_count=Count("items")):
        contaminated = per_benchmark.get(benchmark.pk, 0)
        rows.append(
            {
                "name": benchmark.name,
                "items": benchmark.item_count,
                "problems": contaminated,
                "all": total > 0 and contaminated == total,
            }
        )
    return rows


def benchmark_names() -> list[str]:
    return list(Benchmark.objects.values_list("name", flat=True))


def contaminated(problem, *, besides: list[str] = (), benchmark: str = "") -> Exists:
    """Whether the problem (an OuterRef) is in a benchmark other than ``besides``
    (or in ``benchmark``): a condition for querysets of other records."""
    overlaps = Contamination.objects.filter(problem=problem)
    if benchmark:
        overlaps = overlaps.filter(benchmark__name=benchmark)
    if besides:
        overlaps = overlaps.exclude(benchmark__name__in=list(besides))
    return Exists(overlaps)


def benchmarks_of_problems(names: list[str]) -> dict[str, list[str]]:
    """Problem key (``source:external_id``) -> the names, among these, of its benchmarks."""
    found: dict[str, list[str]] = {}
    rows = Contamination.objects.filter(benchmark__name__in=list(names)).values_list(
        "problem__source", "problem__external_id", "benchmark__name"
    )
    for source, external_id, name in rows.order_by("benchmark__name").iterator(chunk_size=2000):
        found.setdefault(f"{source}:{external_id}", []).append(name)
    return found
