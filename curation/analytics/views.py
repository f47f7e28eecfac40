"""The analytics pages: the dashboard, the comparison and the drill-down list of traces."""

import hashlib
from collections.abc import Callable
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, has_role, role_required

from ..models import Marker
from . import charts, metrics
from .filters import FLAGS, TraceFilterForm, traces_filtered
from .profiles import profiles_missing
from .tasks import count_marker, fill_profiles

TRACES_PER_PAGE = 50
VISIBLE_FILTERS = ["status", "review", "has", "lacks", "answer_match", "flag", "clear"]
SCOPE_PARAMS = {"prompt_id": "prompt", "endpoint__model": "model"}


def traces_url(**params) -> str:
    """The drill-down list filtered by ``params`` (None values left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return f"{reverse('analytics-traces')}?{query}"


def scope_params(scope: dict) -> dict:
    return {SCOPE_PARAMS[lookup]: value for lookup, value in scope.items()}


def cached(parts: tuple, compute: Callable[[], dict], *, fresh: bool) -> dict:
    """Figures computed at most ANALYTICS_CACHE_SECONDS ago, with the time they were computed."""
    key = "analytics:" + hashlib.sha256(repr(parts).encode()).hexdigest()
    entry = None if fresh else cache.get(key)
    if entry is None:
        entry = {"figures": compute(), "computed_at": timezone.now()}
        cache.set(key, entry, settings.ANALYTICS_CACHE_SECONDS)
    return entry


def _fresh(request) -> bool:
    return request.GET.get("fresh") == "1"


def _scope(request) -> tuple[str, dict]:
    value = request.GET.get("scope", "")
    scope = metrics.parse_scope(value)
    if scope is None:
        messages.error(request, f"Unknown scope “{value}”: showing every trace.")
        return "", {}
    return value, scope


# -- the dashboard -------------------------------------------------------------------------


def _funnel_links(funnel: dict, *, is_admin: bool) -> list[dict]:
    def href(stage: str, window) -> str | None:
        day = window.start.date() if window.start else None
        return {
            "problems": reverse("problem-list") if not day else None,
            "submitted": f"{reverse('problem-list')}?status=submitted" if not day else None,
            "expanded": traces_url(status="succeeded", since=day),
            "awaiting": traces_url(review="awaiting", since=day),
            "approved": traces_url(review="approved", decided_since=day),
            "rejected": traces_url(review="rejected", decided_since=day),
            "exported": reverse("exports") if is_admin and not day else None,
        }.get(stage)

    return [
        {**stage, "cells": [{"count": count, "href": href(stage["key"], window)}
                            for count, window in zip(stage["counts"], funnel["windows"],
                                                     strict=True)]}
        for stage in funnel["stages"]
    ]  # fmt: skip


def _marker_links(rates: dict, scope: dict) -> dict:
    base = scope_params(scope)
    group_param = {"prompt": "prompt", "model": "model"}.get(rates["group"])
    for row in rates["rows"]:
        for cell in row["cells"]:
            column = {group_param: cell["column"]} if group_param else {}
            phrase = row["marker"].phrase
            cell["has_href"] = traces_url(**base, **column, has=phrase)
            cell["lacks_href"] = traces_url(**base, **column, lacks=phrase)
    return rates


def _dashboard_figures(group: str, scope: dict) -> dict:
    base = scope_params(scope)
    return {
        "funnel": metrics.funnel(),
        "costs": metrics.costs(),
        "tokens": charts.histogram_chart(
            metrics.histogram("tokens", scope), "completion tokens",
            lambda low, high: traces_url(**base, tokens_min=low, tokens_max=high)),
        "lines": charts.histogram_chart(
            metrics.histogram("lines", scope), "lines",
            lambda low, high: traces_url(**base, lines_min=low, lines_max=high)),
        "markers": _marker_links(metrics.marker_rates(scope), scope),
        "markers_by_group": _marker_links(metrics.marker_rates(scope, group), scope),
        "annotators": metrics.annotators(),
        "reviewers": metrics.reviewers(),
        "scope_choices": metrics.scope_choices(),
        "missing": profiles_missing(),
    }  # fmt: skip


class MarkerForm(forms.ModelForm):
    class Meta:
        model = Marker
        fields = ["phrase"]

    def clean_phrase(self) -> str:
        phrase = " ".join(self.cleaned_data["phrase"].split())
        if not any(ch.isalnum() for ch in phrase):
            raise forms.ValidationError("A marker needs at least one letter or digit.")
        if Marker.objects.filter(phrase__iexact=phrase).exists():
            raise forms.ValidationError(f"“{phrase}” is already counted.")
        return phrase


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def dashboard(request):
    group = request.GET.get("group", "prompt")
    if group not in metrics.GROUPS:
        group = "prompt"
    scope_value, scope = _scope(request)
    entry = cached(("dashboard", group, scope_value),
                   lambda: _dashboard_figures(group, scope), fresh=_fresh(request))  # fmt: skip
    figures = entry["figures"]
    is_admin = has_role(request.user, Role.ADMIN)
    return render(request, "analytics/dashboard.html", {
        **figures, "funnel_rows": _funnel_links(figures["funnel"], is_admin=is_admin),
        "computed_at": entry["computed_at"], "cache_seconds": settings.ANALYTICS_CACHE_SECONDS,
        "group": group, "scope": scope_value, "scope_query": urlencode(scope_params(scope)),
        "marker_form": MarkerForm(), "pending_markers": Marker.objects.filter(counted_at=None),
    })  # fmt: skip


@require_POST
@role_required(Role.ADMIN)
def marker_add(request):
    form = MarkerForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors["phrase"]))
        return redirect("analytics")
    marker = form.save()
    transaction.on_commit(lambda: count_marker.delay(marker.pk))
    messages.success(
        request, f"“{marker.phrase}” is being counted over every trace; its figures appear when "
        "the count finishes."
    )  # fmt: skip
    return redirect("analytics")


@require_POST
@role_required(Role.ADMIN)
def profiles_refresh(request):
    transaction.on_commit(fill_profiles.delay)
    messages.success(request, "The traces without a profile are being profiled.")
    return redirect("analytics")


# -- comparison ----------------------------------------------------------------------------


def _side_links(figures: dict, scope: dict) -> dict:
    base = scope_params(scope)
    figures["links"] = {
        "traces": traces_url(**base),
        "succeeded": traces_url(**base, status="succeeded"),
        "approved": traces_url(**base, review="approved"),
        "rejected": traces_url(**base, review="rejected"),
        "matched": traces_url(**base, answer_match="true"),
        "profiled": traces_url(**base, status="succeeded"),
    }
    _marker_links(figures["markers"], scope)
    return figures


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def compare(request):
    choices = cached(("choices",), metrics.scope_choices, fresh=_fresh(request))["figures"]
    defaults = [value for value, _ in choices[:2]] + ["", ""]
    picked = [request.GET.get("a", defaults[0]), request.GET.get("b", defaults[1])]
    sides = []
    for value in picked:
        scope = metrics.parse_scope(value)
        if scope is None or not value:
            messages.error(request, f"Pick a prompt version or a model to compare (“{value}”).")
            sides.append(None)
            continue
        entry = cached(("side", value), lambda s=scope: metrics.side(s), fresh=_fresh(request))
        label = dict(choices).get(value, value)
        sides.append({"value": value, "label": label, "computed_at": entry["computed_at"],
                      **_side_links(entry["figures"], scope)})  # fmt: skip
    rows = []
    if all(sides):
        rows = [
            {"marker": a["marker"], "a": a["cells"][0], "b": b["cells"][0]}
            for a, b in zip(sides[0]["markers"]["rows"], sides[1]["markers"]["rows"], strict=True)
        ]
    return render(request, "analytics/compare.html", {
        "choices": choices, "picked": picked, "sides": sides, "marker_rows": rows,
        "cache_seconds": settings.ANALYTICS_CACHE_SECONDS,
    })  # fmt: skip


# -- drill-down ----------------------------------------------------------------------------


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def traces(request):
    form = TraceFilterForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "flags": FLAGS, "visible_fields": VISIBLE_FILTERS}
        return render(request, "analytics/traces.html", context, status=400)
    matching = traces_filtered(form.cleaned_data).select_related(
        "endpoint", "prompt", "annotation__problem", "review", "profile"
    ).only(
        "pk", "status", "finished_at", "completion_tokens", "cost", "is_simulated",
        *FLAGS.values(), "endpoint__name", "endpoint__model", "prompt__name", "prompt__version",
        "annotation__problem__source", "annotation__problem__external_id", "review__status",
        "profile__tokens", "profile__lines",
    )  # fmt: skip
    page = Paginator(matching, TRACES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    applied = {k: v for k, v in form.cleaned_data.items() if v not in (None, "", [])}
    return render(request, "analytics/traces.html", {
        "form": form, "page": page, "query": query.urlencode(), "applied": applied,
        "flags": FLAGS, "visible_fields": VISIBLE_FILTERS,
    })  # fmt: skip
