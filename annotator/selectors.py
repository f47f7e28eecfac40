from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Annotation, Problem
from .roles import Role, has_role

ANNOTATION_STATUSES = {
    "none": "Not annotated",
    "in_progress": "In progress",
    "submitted": "Submitted",
}


def problem_list(
    *,
    search: str = "",
    source: str = "",
    subject: str = "",
    level: int | None = None,
    annotation_status: str = "",
) -> QuerySet[Problem]:
    """Problems matching the list page's filters, in a stable order."""
    problems = Problem.objects.all()
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
