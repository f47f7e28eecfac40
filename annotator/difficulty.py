"""What rollout campaigns say of problems, as the problem pages and the lease order read it.

The campaigns, their samples and each problem's ``ProblemDifficulty`` live in expansion,
which annotator does not import (expansion depends on annotator, not back). This module is
the one place annotator reads them: through the ``difficulties`` relation expansion declares
on ``Problem`` and, for the campaign menu, the campaign model looked up by name. Only
reviewers' and admins' pages call it; the annotator's workspace never shows a pass rate
(annotators would anchor on it).
"""

from django.apps import apps
from django.db.models import F, FilteredRelation, Q, QuerySet

SORTS = {"pass_asc": "lowest pass rate first", "pass_desc": "highest pass rate first"}
DISPUTES = {"disputed": "reference disputed", "unchecked": "disputed, not checked yet"}
FIGURES = ("samples", "verified", "correct", "pass_rate", "reference_disputed",
           "dispute_checked_at")  # fmt: skip


def _campaigns() -> QuerySet:
    return apps.get_model("expansion", "RolloutCampaign").objects.all()


def campaigns_with_difficulties() -> list:
    """Campaigns whose samples have said something of a problem, latest first (one query)."""
    return list(
        _campaigns()
        .filter(difficulties__isnull=False)
        .distinct()
        .select_related("endpoint")
        .order_by("-created_at", "-pk")
    )


def campaign_choices() -> list[tuple[int, str]]:
    """Every campaign as (id, label), latest first, for the workspace's lease setting."""
    return [
        (campaign.pk, f"{campaign.name} ({campaign.endpoint.model})")
        for campaign in _campaigns().select_related("endpoint").order_by("-created_at", "-pk")
    ]


def with_difficulty(
    problems: QuerySet,
    *,
    campaign_id: int,
    sort: str = "",
    at_most: int | None = None,
    dispute: str = "",
) -> QuerySet:
    """``problems`` with the campaign's figures as ``d_<figure>`` attributes (None where the
    campaign has no figures for a problem), read in the same query; filtered and sorted.

    ``at_most``: problems the model solved in at most k of its verified samples (problems
    without figures are left out). ``dispute``: ``disputed`` or ``unchecked`` (disputed and
    not yet checked by an admin). ``sort``: ``pass_asc`` or ``pass_desc``, problems without
    a pass rate last.
    """
    problems = problems.alias(
        d=FilteredRelation("difficulties", condition=Q(difficulties__campaign_id=campaign_id))
    ).annotate(**{f"d_{name}": F(f"d__{name}") for name in FIGURES})
    if at_most is not None:
        problems = problems.filter(d__correct__lte=at_most, d__verified__gt=0)
    if dispute in DISPUTES:
        problems = problems.filter(d__reference_disputed=True)
        if dispute == "unchecked":
            problems = problems.filter(d__dispute_checked_at__isnull=True)
    if sort in SORTS:
        rate = F("d__pass_rate")
        rate = rate.asc(nulls_last=True) if sort == "pass_asc" else rate.desc(nulls_last=True)
        problems = problems.order_by(rate, "source", "external_id")
    return problems


def problem_difficulties(problem) -> list:
    """The problem's figures in every campaign, latest campaign first (one query)."""
    return list(
        problem.difficulties.select_related("campaign__endpoint", "dispute_checked_by").order_by(
            "-campaign__created_at", "-campaign_id"
        )
    )


def lease_order(problems: QuerySet, *, campaign_id: int, skip_solved: int | None) -> QuerySet:
    """Problems to lease, those the campaign's model fails most first: lowest pass rate, then
    fewest active annotations (``problems`` carries ``active``), then import order; problems
    it has no pass rate for come last. ``skip_solved``: leave out those it solved in at
    least that many samples."""
    problems = problems.alias(
        lease_d=FilteredRelation("difficulties", condition=Q(difficulties__campaign_id=campaign_id))
    )
    if skip_solved is not None:
        problems = problems.filter(
            Q(lease_d__correct__lt=skip_solved) | Q(lease_d__correct__isnull=True)
        )
    return problems.order_by(F("lease_d__pass_rate").asc(nulls_last=True), "active", "pk")
