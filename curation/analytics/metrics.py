"""The corpus figures: each one a database aggregate, never a Python loop over traces.

A *scope* narrows figures to one prompt version or one model: a dict of lookups relative to
Trace (``{"prompt_id": 3}``, ``{"endpoint__model": "gpt-x"}``, or ``{}`` for everything).
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import (
    Avg,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    Sum,
)
from django.db.models.functions import Coalesce, TruncHour
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotator.models import Annotation, Problem
from expansion.models import LLMEndpoint, PromptVersion, Trace

from ..models import Decision, Export, Marker, MarkerCount, ReviewDecision, TraceProfile
from ..models import TraceReview as Review

EVERY = Q()
SUCCEEDED = Q(status=Trace.Status.SUCCEEDED)
AWAITING = SUCCEEDED & (Q(review__isnull=True) | Q(review__status=Review.Status.PENDING))
GROUPS = {"prompt": "prompt_id", "model": "endpoint__model"}


@dataclass(frozen=True)
class Window:
    key: str
    label: str
    start: datetime | None  # None: since the beginning

    def since(self, field: str) -> Q:
        return Q(**{f"{field}__gte": self.start}) if self.start else Q()


def windows(now: datetime | None = None) -> list[Window]:
    """Today and this week (from Monday) start at local midnight."""
    local = timezone.localtime(now)
    today = local.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    return [Window("today", _("Today"), today), Window("week", _("This week"), week),
            Window("total", _("In total"), None)]  # fmt: skip


def _prefixed(scope: dict, prefix: str) -> dict:
    return {f"{prefix}{lookup}": value for lookup, value in scope.items()}


def _ratio(part, whole) -> float | None:
    return part / whole if whole else None


# -- the funnel ----------------------------------------------------------------------------


def funnel(now: datetime | None = None) -> dict:
    """Each stage's count today, this week and in total: five aggregate queries."""
    spans = windows(now)

    def per_window(queryset, field: str, condition: Q = EVERY, measure: str = "pk") -> dict:
        def aggregate(window):
            if measure == "pk":
                return Count("pk", filter=condition & window.since(field))
            return Coalesce(Sum(measure, filter=condition & window.since(field)), 0)

        return queryset.aggregate(**{w.key: aggregate(w) for w in spans})

    traces = Trace.objects.all()
    stages = [
        ("problems", _("Problems"), per_window(Problem.objects.all(), "created_at")),
        ("annotated", _("Annotations started"), per_window(Annotation.objects.all(), "created_at")),
        ("submitted", _("Annotations submitted"), per_window(
            Annotation.objects.filter(submitted_at__isnull=False), "submitted_at")),
        ("expanded", _("Traces expanded"), per_window(traces, "finished_at", SUCCEEDED)),
        ("awaiting", _("Awaiting review"), per_window(traces, "finished_at", AWAITING)),
        ("approved", _("Approved"), per_window(
            Review.objects.filter(status=Review.Status.APPROVED), "decided_at")),
        ("rejected", _("Rejected"), per_window(
            Review.objects.filter(status=Review.Status.REJECTED), "decided_at")),
        ("exported", _("Records written by exports"), per_window(
            Export.objects.filter(status=Export.Status.SUCCEEDED), "finished_at",
            measure="records")),
    ]  # fmt: skip
    return {"windows": spans, "stages": [
        {"key": key, "label": label, "counts": [counts[w.key] for w in spans]}
        for key, label, counts in stages
    ]}  # fmt: skip


# -- cost and tokens -----------------------------------------------------------------------

_MONEY = DecimalField(max_digits=16, decimal_places=6)


def _cost_figures() -> dict:
    return {
        # What the cost rests on: traces with an answer, those whose token counts the
        # provider did not report, and those that could not be priced (no prices set).
        # Before "cost": after it, cost__isnull would name the sum rather than the column.
        "answered": Count("pk", filter=~Q(usage_source="")),
        "estimated": Count("pk", filter=Q(usage_estimated=True)),
        "unpriced": Count("pk", filter=Q(cost__isnull=True) & ~Q(usage_source="")),
        "traces": Count("pk"),
        "succeeded": Count("pk", filter=SUCCEEDED),
        "prompt_tokens": Coalesce(Sum("prompt_tokens"), 0),
        "completion_tokens": Coalesce(Sum("completion_tokens"), 0),
        "cost": Coalesce(Sum("cost"), Decimal(0), output_field=_MONEY),
        "approved": Count("pk", filter=Q(review__status=Review.Status.APPROVED)),
    }


def _with_cost_per_approved(row: dict) -> dict:
    if row["answered"] and row["unpriced"] == row["answered"]:
        row["cost"] = None  # nothing could be priced: unknown, not $0
    row["cost_per_approved"] = (
        row["cost"] / row["approved"] if row["approved"] and row["cost"] is not None else None
    )
    return row


def costs() -> dict:
    """Tokens and cost per endpoint and model, per prompt version, and in total.

    The cost per approved trace divides what every trace of a group cost (failed and
    rejected ones included: they were paid for) by the group's approved traces.
    """
    by_endpoint = (
        Trace.objects.values("endpoint_id", "endpoint__name", "endpoint__model")
        .annotate(**_cost_figures())
        .order_by("endpoint__name", "endpoint__model")
    )
    by_prompt = (
        Trace.objects.values("prompt_id", "prompt__name", "prompt__version")
        .annotate(**_cost_figures())
        .order_by("prompt__name", "prompt__version")
    )
    endpoints = list(by_endpoint)
    total = {name: sum(row[name] for row in endpoints) for name in _cost_figures()}
    return {
        "endpoints": [_with_cost_per_approved(row) for row in endpoints],
        "prompts": [_with_cost_per_approved(row) for row in by_prompt],
        "total": _with_cost_per_approved(total),  # the sum of the endpoints' sums
    }


# -- trace profile -------------------------------------------------------------------------


def nice_width(span: float, bins: int) -> int:
    """The smallest of 1, 2, 5 x 10^k at least span / bins."""
    raw = max(span / bins, 1)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(step * power for step in (1, 2, 5, 10) if step * power >= raw))


def histogram(field: str, scope: dict, bins: int = 12) -> dict:
    """Succeeded traces by ``tokens`` or ``lines`` in equal-width bins: two queries."""
    profiles = TraceProfile.objects.filter(**_prefixed(scope, "trace__"))
    bounds = profiles.aggregate(low=Min(field), high=Max(field), total=Count("pk"))
    if not bounds["total"]:
        return {"field": field, "width": 0, "bars": [], "total": 0, "tallest": 0}
    width = nice_width(bounds["high"] - bounds["low"] + 1, bins)
    counted = dict(
        profiles.annotate(bin=ExpressionWrapper(F(field) / width, output_field=IntegerField()))
        .values_list("bin")
        .annotate(n=Count("pk"))
        .values_list("bin", "n")
        .order_by()
    )
    first, last = bounds["low"] // width, bounds["high"] // width
    bars = [
        {"low": b * width, "high": (b + 1) * width, "count": counted.get(b, 0)}
        for b in range(first, last + 1)
    ]
    return {"field": field, "width": width, "bars": bars, "total": bounds["total"],
            "tallest": max(bar["count"] for bar in bars)}  # fmt: skip


def _labels(group: str, keys) -> dict:
    """Column labels for the groups present: prompt versions by id (in version order) or models."""
    if group == "prompt":
        prompts = PromptVersion.objects.filter(pk__in=keys).order_by("name", "version")
        return {p.pk: str(p) for p in prompts}
    return {model: model for model in sorted(keys)}


def _by_column(queryset, key: str | None, **aggregates) -> dict:
    """Aggregates per value of ``key``, or over every row under None."""
    if key is None:
        return {None: queryset.aggregate(**aggregates)}
    return {row.pop(key): row for row in queryset.values(key).annotate(**aggregates).order_by()}


def marker_rates(scope: dict, group: str | None = None) -> dict:
    """Each marker's occurrences per 1,000 completion tokens, and the share of traces using it.

    Overall (``group=None``) or per prompt version / model: two aggregate queries.
    """
    key = f"trace__{GROUPS[group]}" if group else None
    totals = _by_column(
        TraceProfile.objects.filter(**_prefixed(scope, "trace__")), key,
        tokens=Coalesce(Sum("tokens"), 0), traces=Count("pk"),
    )  # fmt: skip
    counted = (
        MarkerCount.objects.filter(**_prefixed(scope, "trace__"))
        .values(*([key] if key else []), "marker_id")
        .annotate(n=Sum("count"), traces=Count("trace_id"))
        .order_by()
    )
    counts = {(row.get(key) if key else None, row["marker_id"]): row for row in counted}
    columns = _labels(group, list(totals)) if group else {None: _("All traces")}
    empty = {"tokens": 0, "traces": 0, "n": 0}
    rows = []
    for marker in Marker.objects.all():
        cells = []
        for column in columns:
            total = totals.get(column, empty)
            found = counts.get((column, marker.pk), empty)
            cells.append({"column": column, "per_1k": _ratio(1000 * found["n"], total["tokens"]),
                          "share": _ratio(found["traces"], total["traces"]),
                          "traces": total["traces"]})  # fmt: skip
        rows.append({"marker": marker, "cells": cells})
    traces = {column: totals.get(column, empty)["traces"] for column in columns}
    return {"group": group, "columns": columns, "rows": rows, "traces": traces}


# -- comparison ----------------------------------------------------------------------------


def side(scope: dict) -> dict:
    """The figures of one prompt version or model, each with the number of traces behind it."""
    figures = Trace.objects.filter(**scope).aggregate(
        **_cost_figures(),
        rejected=Count("pk", filter=Q(review__status=Review.Status.REJECTED)),
        profiled=Count("profile"),
        matched=Count("pk", filter=Q(profile__answer_match=True)),
        with_coverage=Count("profile__coverage"),
        coverage=Avg("profile__coverage"),
        tokens=Avg("profile__tokens"),
        lines=Avg("profile__lines"),
    )
    figures["decided"] = figures["approved"] + figures["rejected"]
    figures["approval_rate"] = _ratio(figures["approved"], figures["decided"])
    figures["match_rate"] = _ratio(figures["matched"], figures["profiled"])
    figures["markers"] = marker_rates(scope)
    return _with_cost_per_approved(figures)


def scope_choices() -> list[tuple[str, str]]:
    """What can be compared: every prompt version and every model that has traces."""
    used = PromptVersion.objects.filter(Exists(Trace.objects.filter(prompt=OuterRef("pk"))))
    models = (
        LLMEndpoint.objects.filter(Exists(Trace.objects.filter(endpoint=OuterRef("pk"))))
        .values_list("model", flat=True)
        .distinct()
    )
    return [(f"prompt:{p.pk}", f"Prompt {p}") for p in used.order_by("name", "version")] + [
        (f"model:{model}", f"Model {model}") for model in sorted(models)
    ]


def parse_scope(value: str) -> dict | None:
    """``prompt:<id>`` or ``model:<name>`` as a scope; ``""`` is everything; else None."""
    kind, _, ident = (value or "").partition(":")
    if not value:
        return {}
    if kind == "prompt" and re.fullmatch(r"[0-9]{1,18}", ident):
        return {"prompt_id": int(ident)}
    if kind == "model" and ident and "\x00" not in ident:
        return {"endpoint__model": ident}
    return None


# -- people --------------------------------------------------------------------------------


def annotators() -> list[dict]:
    """Per annotator: submitted annotations, mean time per annotation, their traces with the
    approval rate, and the share of submitted annotations returned at least once."""
    users = get_user_model().objects
    submitted = (
        Annotation.objects.filter(submitted_at__isnull=False)
        .values_list("annotator_id")
        .annotate(n=Count("pk"), seconds=Avg("time_spent_seconds"))
        .values_list("annotator_id", "n", "seconds")
        .order_by()
    )
    traced = dict(
        (row[0], row[1:])
        for row in Trace.objects.values_list("annotation__annotator_id")
        .annotate(traces=Count("pk"),
                  approved=Count("pk", filter=Q(review__status=Review.Status.APPROVED)),
                  rejected=Count("pk", filter=Q(review__status=Review.Status.REJECTED)))
        .values_list("annotation__annotator_id", "traces", "approved", "rejected").order_by()
    )  # fmt: skip
    returned = dict(
        ReviewDecision.objects.filter(decision=Decision.RETURN)
        .values_list("trace__annotation__annotator_id")
        .annotate(n=Count("trace__annotation_id", distinct=True))
        .values_list("trace__annotation__annotator_id", "n")
        .order_by()
    )
    rows = {pk: {"submitted": n, "seconds": seconds} for pk, n, seconds in submitted}
    names = dict(users.filter(pk__in=rows).values_list("pk", "username"))
    result = []
    for pk, row in rows.items():
        traces, approved, rejected = traced.get(pk, (0, 0, 0))
        result.append({
            "id": pk, "name": names.get(pk, ""), **row, "traces": traces, "approved": approved,
            "rejected": rejected, "approval_rate": _ratio(approved, approved + rejected),
            "returned": returned.get(pk, 0),
            "return_rate": _ratio(returned.get(pk, 0), row["submitted"]),
        })  # fmt: skip
    return sorted(result, key=lambda row: row["name"])


def _agreement() -> dict[int, tuple[int, int]]:
    """Per reviewer: (pairs, agreed) with each other reviewer who decided the same trace.

    Each reviewer's last approve or reject on a trace, unless undone, is their verdict on it.
    """
    table = ReviewDecision._meta.db_table
    sql = f"""
        WITH verdict AS (
            SELECT trace_id, reviewer_id, decision FROM {table} WHERE id IN (
                SELECT MAX(id) FROM {table} WHERE decision IN (%s, %s) AND id NOT IN (
                    SELECT undoes_id FROM {table} WHERE undoes_id IS NOT NULL)
                GROUP BY trace_id, reviewer_id))
        SELECT mine.reviewer_id, COUNT(*),
               SUM(CASE WHEN mine.decision = other.decision THEN 1 ELSE 0 END)
        FROM verdict mine JOIN verdict other
          ON other.trace_id = mine.trace_id AND other.reviewer_id <> mine.reviewer_id
        GROUP BY mine.reviewer_id
    """  # noqa: S608  (the table name is ours; values are parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [Decision.APPROVE, Decision.REJECT])
        return {reviewer: (pairs, agreed) for reviewer, pairs, agreed in cursor.fetchall()}


def reviewers() -> list[dict]:
    """Per reviewer: decisions, decisions per active hour, agreement with other reviewers.

    An active hour is a clock hour in which the reviewer made at least one decision.
    """
    rows = (
        ReviewDecision.objects.values("reviewer_id", "reviewer__username")
        .annotate(
            decisions=Count("pk"),
            traces=Count("trace_id", distinct=True),
            hours=Count(TruncHour("created_at"), distinct=True),
        )
        .order_by("reviewer__username")
    )
    agreement = _agreement()
    result = []
    for row in rows:
        pairs, agreed = agreement.get(row["reviewer_id"], (0, 0))
        result.append({
            "id": row["reviewer_id"], "name": row["reviewer__username"],
            "decisions": row["decisions"], "traces": row["traces"], "hours": row["hours"],
            "per_hour": _ratio(row["decisions"], row["hours"]),
            "pairs": pairs, "agreed": agreed, "agreement": _ratio(agreed, pairs),
        })  # fmt: skip
    return result
