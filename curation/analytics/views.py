"""The analytics pages: the dashboard, the comparison and the drill-down list of traces."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from annotator.roles import Role, has_role, role_required
from expansion.models import RolloutCampaign, RolloutSample, Trace

from ..models import Marker
from . import metrics, rollouts
from .figures import figures_get, traces_url
from .filters import AnalyticsFilterForm, traces_filtered
from .tasks import count_marker, fill_profiles

TRACES_PER_PAGE = 50
VISIBLE_FILTERS = ["status", "review", "has", "lacks", "answer_match", "checks", "clear"]


def _fresh(request) -> bool:
    """Admins may have figures recomputed during their request ("Recompute now")."""
    return request.GET.get("fresh") == "1" and has_role(request.user, Role.ADMIN)


def _chosen(request, name: str, choices: dict, default: str = "") -> str:
    """A prompt version or model that has traces (``prompt:<id>``, ``model:<name>``)."""
    value = request.GET.get(name, default)
    if value and value not in choices:
        refusal = _("No prompt version or model “%(value)s” has traces.")
        messages.error(request, refusal % {"value": value})
        return default if default in choices else ""
    return value


# -- the dashboard -------------------------------------------------------------------------


def _funnel_links(funnel: dict, *, is_admin: bool) -> list[dict]:
    def href(stage: str, window) -> str | None:
        day = window.start.date() if window.start else None
        return {
            "problems": reverse("problem-list") if not day else None,
            "expanded": traces_url(status="succeeded", finished_since=day),
            "awaiting": traces_url(review="pending", finished_since=day),
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
            raise forms.ValidationError(_("A marker needs at least one letter or digit."))
        if Marker.objects.filter(phrase__iexact=phrase).exists():
            raise forms.ValidationError(_("“%(phrase)s” is already counted.") % {"phrase": phrase})
        return phrase


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def dashboard(request):
    group = request.GET.get("group", "prompt")
    if group not in metrics.GROUPS:
        group = "prompt"
    fresh = _fresh(request)
    choices = dict(figures_get("choices", fresh=fresh)["figures"])
    scope = _chosen(request, "scope", choices)
    overview = figures_get("overview", fresh=fresh)
    profile = figures_get("profile", group, scope, fresh=fresh)
    is_admin = has_role(request.user, Role.ADMIN)
    return render(request, "analytics/dashboard.html", {
        **overview["figures"], **profile["figures"],
        "funnel_rows": _funnel_links(overview["figures"]["funnel"], is_admin=is_admin),
        "computed_at": min(overview["computed_at"], profile["computed_at"]),
        "refreshing": overview["refreshing"] or profile["refreshing"],
        "cache_seconds": settings.ANALYTICS_CACHE_SECONDS, "group": group, "scope": scope,
        "scope_choices": choices.items(), "marker_form": MarkerForm(),
        "pending_markers": Marker.objects.filter(counted_at=None),
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
        request, _("“%(phrase)s” is being counted over every trace; its figures appear when "
                   "the count finishes.") % {"phrase": marker.phrase}
    )  # fmt: skip
    return redirect("analytics")


@require_POST
@role_required(Role.ADMIN)
def profiles_refresh(request):
    transaction.on_commit(fill_profiles.delay)
    messages.success(request, _("The traces without a profile are being profiled."))
    return redirect("analytics")


# -- comparison ----------------------------------------------------------------------------


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def compare(request):
    choices = dict(figures_get("choices", fresh=_fresh(request))["figures"])
    defaults = [*list(choices)[:2], "", ""]
    picked = [
        _chosen(request, "a", choices, defaults[0]),
        _chosen(request, "b", choices, defaults[1]),
    ]
    context = {"choices": choices.items(), "picked": picked,
               "cache_seconds": settings.ANALYTICS_CACHE_SECONDS}  # fmt: skip
    if all(picked):
        entry = figures_get("comparison", *picked, fresh=_fresh(request))
        sides = entry["figures"]["sides"]
        for side, value in zip(sides, picked, strict=True):
            side["label"] = choices[value]
        context.update(entry, sides=sides, marker_rows=entry["figures"]["marker_rows"])
    return render(request, "analytics/compare.html", context)


# -- drill-down ----------------------------------------------------------------------------


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def traces(request):
    form = AnalyticsFilterForm.bind(request.GET)
    if not form.is_valid():
        context = {"form": form, "flags": Trace.FLAGS, "visible_fields": VISIBLE_FILTERS}
        return render(request, "analytics/traces.html", context, status=400)
    matching = traces_filtered(form.filters()).select_related(
        "endpoint", "prompt", "annotation__problem", "review", "profile"
    ).only(
        "pk", "status", "finished_at", "completion_tokens", "cost", "is_simulated",
        *Trace.FLAGS.values(), "endpoint__name", "endpoint__model", "prompt__name",
        "prompt__version",
        "annotation__problem__source", "annotation__problem__external_id", "review__status",
        "profile__tokens", "profile__lines",
    )  # fmt: skip
    page = Paginator(matching, TRACES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    applied = form.filters()
    return render(request, "analytics/traces.html", {
        "form": form, "page": page, "query": query.urlencode(), "applied": applied,
        "flags": Trace.FLAGS, "visible_fields": VISIBLE_FILTERS,
    })  # fmt: skip


# -- agreement between the judge and people ------------------------------------------------


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def agreement(request):
    """Cohen's kappa and confusion tables per question, per judge prompt version and model
    against people, and between people; ``group``/``question``/``a``/``b`` list the traces
    behind a figure (a whole table without ``a`` and ``b``)."""
    from .agreement import QUESTIONS, agreement_figures

    figures = agreement_figures()
    judged = _("Judge %(version)s on %(model)s vs people")
    groups = [{"key": f"{version}|{model}",
               "label": judged % {"version": version, "model": model},
               "questions": questions}
              for (version, model), questions in figures["judges"].items()]  # fmt: skip
    groups.append({"key": "humans", "label": _("Person vs person"), "questions": figures["humans"]})
    drill = None
    chosen = next((g for g in groups if g["key"] == request.GET.get("group")), None)
    question = request.GET.get("question")
    if chosen and question in QUESTIONS:
        a, b = request.GET.get("a") or None, request.GET.get("b") or None
        ids = chosen["questions"][question].traces(a, b)
        drill = {"group": chosen["label"], "question": question, "a": a, "b": b,
                 "traces": ids[:500], "more": max(0, len(ids) - 500)}  # fmt: skip
    elif request.GET.get("group"):
        messages.error(request, _("No such figure: choose one from the tables."))
    return render(request, "analytics/agreement.html", {"groups": groups, "drill": drill})


# -- rounds: two rollout campaigns side by side --------------------------------------------


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def campaigns(request):
    """Two campaigns (``a``, ``b``: their ids) compared; the two newest by default."""
    choices = dict(rollouts.campaign_choices())
    defaults = [*list(choices)[:2], "", ""]
    picked = []
    for name, default in zip("ab", defaults, strict=False):
        value = request.GET.get(name, default)
        if value and value not in choices:
            messages.error(
                request, _("No campaign with samples has the id “%(id)s”.") % {"id": value}
            )
            value = default
        picked.append(value)
    context = {"choices": choices.items(), "picked": picked,
               "cache_seconds": settings.ANALYTICS_CACHE_SECONDS}  # fmt: skip
    if all(picked) and picked[0] != picked[1]:
        entry = figures_get("campaigns", *picked, fresh=_fresh(request))
        context.update(entry, **entry["figures"])
    return render(request, "analytics/campaigns.html", context)


class CampaignSamplesForm(forms.Form):
    subject = forms.CharField(required=False)
    level = forms.RegexField(
        r"^(\d{1,3}|none)$",
        required=False,
        error_messages={"invalid": gettext_lazy("A level is a number or “none”.")},
    )
    verdict = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("any")), *RolloutSample.Verdict.choices]
    )
    status = forms.ChoiceField(
        required=False, choices=[("", gettext_lazy("any")), *RolloutSample.Status.choices]
    )

    def filters(self) -> dict:
        return {k: v for k, v in self.cleaned_data.items() if v not in ("", None)}


@require_GET
@role_required(Role.REVIEWER, Role.ADMIN)
def campaign_samples(request, campaign_id: int):
    """The samples behind a figure of the campaign comparison."""
    campaign = get_object_or_404(RolloutCampaign.objects.select_related("endpoint"),
                                 pk=campaign_id)  # fmt: skip
    form = CampaignSamplesForm(request.GET)
    if not form.is_valid():
        return render(request, "analytics/campaign_samples.html",
                      {"campaign": campaign, "form": form}, status=400)  # fmt: skip
    samples = rollouts.campaign_samples(campaign.pk, **form.filters()).only(
        "pk", "problem_id", "sample_index", "status", "verdict", "answer", "reference_answer",
        "completion_tokens", "cost", "flag_truncated", "flag_repetition", "flag_format",
        "flag_no_reflection", "error_message", "problem__source", "problem__external_id",
        "problem__subject", "problem__level",
    )  # fmt: skip
    page = Paginator(samples, TRACES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "analytics/campaign_samples.html", {
        "campaign": campaign, "form": form, "page": page, "query": query.urlencode(),
        "applied": form.filters(),
    })  # fmt: skip
