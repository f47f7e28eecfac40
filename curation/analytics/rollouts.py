"""Rounds side by side: two rollout campaigns (or two models sampled on the same problems)
compared on pass rate overall and per subject and level, tokens, marker profile and cost
per correct sample. Each figure says how many samples are behind it and links to them."""

from urllib.parse import urlencode

from django.db.models import Avg, Count, Q, Sum
from django.urls import reverse

from expansion.markers import marker_count
from expansion.models import RolloutCampaign, RolloutSample

from ..models import Marker

Verdict = RolloutSample.Verdict
VERIFIED = Q(verdict__in=[Verdict.CORRECT, Verdict.INCORRECT])
CHUNK = 500


def samples_url(campaign_id: int, **params) -> str:
    """The drill-down list of a campaign's samples filtered by ``params`` (None left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    url = reverse("analytics-campaign-samples", args=[campaign_id])
    return f"{url}?{query}" if query else url


def _ratio(part, whole) -> float | None:
    return part / whole if whole else None


def _pass_figures() -> dict:
    return {
        "samples": Count("pk"),
        "finished": Count("pk", filter=Q(status=RolloutSample.Status.SUCCEEDED)),
        "failed": Count("pk", filter=Q(status=RolloutSample.Status.FAILED)),
        "verified": Count("pk", filter=VERIFIED),
        "correct": Count("pk", filter=Q(verdict=Verdict.CORRECT)),
        "unverified": Count("pk", filter=Q(verdict=Verdict.UNVERIFIED)),
        "no_reference": Count("pk", filter=Q(verdict=Verdict.NO_REFERENCE)),
    }


def _breakdown(samples, field: str, campaign_id: int) -> dict:
    """Pass rate per value of a problem field (subject or level), with the samples behind."""
    rows = {}
    for row in (samples.values(f"problem__{field}").annotate(**_pass_figures())
                .order_by(f"problem__{field}")):  # fmt: skip
        value = row.pop(f"problem__{field}")
        param = "" if value in (None, "") else str(value)
        rows[param] = {
            **row, "pass_rate": _ratio(row["correct"], row["verified"]),
            "href": samples_url(campaign_id, **{field: param or "none"}),
        }  # fmt: skip
    return rows


def _markers(samples, markers: list[Marker]) -> list[dict]:
    """Each marker's occurrences per 1,000 completion tokens and the share of finished
    samples using it, counted in the samples' thoughts."""
    found = {marker.pk: {"n": 0, "samples": 0} for marker in markers}
    tokens = finished = 0
    finished_samples = samples.filter(status=RolloutSample.Status.SUCCEEDED)
    for sample in finished_samples.only("thought", "completion_tokens").iterator(CHUNK):
        finished += 1
        tokens += sample.completion_tokens or 0
        for marker in markers:
            count = marker_count(sample.thought, marker.phrase)
            if count:
                found[marker.pk]["n"] += count
                found[marker.pk]["samples"] += 1
    return [
        {"per_1k": _ratio(1000 * found[m.pk]["n"], tokens),
         "share": _ratio(found[m.pk]["samples"], finished), "samples": finished}
        for m in markers
    ]  # fmt: skip


def campaign_side(campaign_id: int, markers: list[Marker]) -> dict:
    """The figures of one campaign."""
    campaign = RolloutCampaign.objects.select_related("endpoint", "prompt").get(pk=campaign_id)
    samples = RolloutSample.objects.filter(campaign_id=campaign_id)
    figures = samples.aggregate(
        **_pass_figures(),
        tokens_correct=Avg("completion_tokens", filter=Q(verdict=Verdict.CORRECT)),
        tokens_incorrect=Avg("completion_tokens", filter=Q(verdict=Verdict.INCORRECT)),
        problems_sampled=Count("problem", distinct=True),
        priced=Count("pk", filter=Q(cost__isnull=False)),
        cost=Sum("cost"),
    )  # fmt: skip
    figures["pass_rate"] = _ratio(figures["correct"], figures["verified"])
    figures["cost_per_correct"] = (
        figures["cost"] / figures["correct"] if figures["cost"] and figures["correct"] else None
    )
    pk = campaign.pk
    figures.update(
        id=pk, name=campaign.name, model=campaign.endpoint.model, prompt=str(campaign.prompt),
        temperature=campaign.temperature, top_p=campaign.top_p,
        samples_per_problem=campaign.samples_per_problem,
        by_subject=_breakdown(samples, "subject", pk), by_level=_breakdown(samples, "level", pk),
        markers=_markers(samples, markers),
        links={"samples": samples_url(pk), "correct": samples_url(pk, verdict="correct"),
               "incorrect": samples_url(pk, verdict="incorrect"),
               "unverified": samples_url(pk, verdict="unverified"),
               "no_reference": samples_url(pk, verdict="no_reference"),
               "failed": samples_url(pk, status="failed")},
    )  # fmt: skip
    return figures


def _rows(sides: list[dict], key: str) -> list[dict]:
    """The subjects (or levels) of either side, one row each, both sides' cells in it."""
    values = sorted({value for side in sides for value in side[key]},
                    key=lambda v: (v == "", v.zfill(4) if v.isdigit() else v))  # fmt: skip
    return [{"value": value, "cells": [side[key].get(value) for side in sides]}
            for value in values]  # fmt: skip


def campaigns_comparison(a: str, b: str) -> dict:
    """Two campaigns side by side (the figures cache's ``campaigns`` entry)."""
    markers = list(Marker.objects.all())
    sides = [campaign_side(int(a), markers), campaign_side(int(b), markers)]
    marker_rows = [{"phrase": marker.phrase, "cells": [side["markers"][i] for side in sides]}
                   for i, marker in enumerate(markers)]  # fmt: skip
    return {"sides": sides, "subject_rows": _rows(sides, "by_subject"),
            "level_rows": _rows(sides, "by_level"), "marker_rows": marker_rows}  # fmt: skip


def campaign_choices() -> list[tuple[str, str]]:
    """The campaigns that have samples, newest first: (id, "name · model")."""
    campaigns = (
        RolloutCampaign.objects.filter(samples__isnull=False).distinct()
        .select_related("endpoint").order_by("-created_at", "-pk")
    )  # fmt: skip
    return [(str(c.pk), f"{c.name} · {c.endpoint.model}") for c in campaigns]


def campaign_samples(campaign_id: int, *, subject=None, level=None, verdict=None, status=None):
    """The samples behind a figure: ``none`` stands for an empty subject or level."""
    samples = RolloutSample.objects.filter(campaign_id=campaign_id)
    if subject is not None:
        samples = samples.filter(problem__subject="" if subject == "none" else subject)
    if level is not None:
        samples = samples.filter(**({"problem__level__isnull": True} if level == "none"
                                    else {"problem__level": int(level)}))  # fmt: skip
    if verdict is not None:
        samples = samples.filter(verdict=verdict)
    if status is not None:
        samples = samples.filter(status=status)
    return samples.select_related("problem").order_by("problem_id", "sample_index")
