"""The analytics pages: the dashboard, the comparison and the drill-down list of traces."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, has_role, role_required

from ..models import Marker
from . import metrics
from .figures import figures_get, traces_url
from .filters import FLAGS, TraceFilterForm, traces_filtered
from .tasks import count_marker, fill_profiles

TRACES_PER_PAGE = 50
VISIBLE_FILTERS = ["status", "review", "has", "lacks", "answer_match", "flag", "clear"]


def _fresh(request) -> bool:
    return request.GET.get("fresh") == "1"


def _scope(request) -> str:
    value = request.GET.get("scope", "")
    if metrics.parse_scope(value) is None:
        messages.error(request, f"Unknown scope “{value}”: showing every trace.")
        return ""
    return value


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
    scope_value = _scope(request)
    entry = figures_get("dashboard", group, scope_value, fresh=_fresh(request))
    figures = entry["figures"]
    is_admin = has_role(request.user, Role.ADMIN)
    return render(request, "analytics/dashboard.html", {
        **figures, "funnel_rows": _funnel_links(figures["funnel"], is_admin=is_admin),
        "computed_at": entry["computed_at"], "refreshing": entry["refreshing"],
        "cache_seconds": settings.ANALYTICS_CACHE_SECONDS, "group": group, "scope": scope_value,
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


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def compare(request):
    choices = figures_get("choices", fresh=_fresh(request))["figures"]
    defaults = [value for value, _ in choices[:2]] + ["", ""]
    picked = [request.GET.get("a", defaults[0]), request.GET.get("b", defaults[1])]
    sides = []
    for value in picked:
        if not metrics.parse_scope(value):
            messages.error(request, f"Pick a prompt version or a model to compare (“{value}”).")
            sides.append(None)
            continue
        entry = figures_get("side", value, fresh=_fresh(request))
        label = dict(choices).get(value, value)
        sides.append({"value": value, "label": label, "computed_at": entry["computed_at"],
                      "refreshing": entry["refreshing"], **entry["figures"]})  # fmt: skip
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
