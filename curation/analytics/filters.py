"""The drill-down list's filters: every figure on the dashboards links to a list filtered so.

The trace and review filters are curation's ``ReviewFilterForm`` (on expansion's one trace
filter); the figures the analytics take of each trace (profile, markers) are added here.
"""

from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from expansion.selectors import between

from ..filters import REVIEW_CHOICES, ReviewFilterForm
from ..models import Marker, MarkerCount
from ..selectors import traces_reviewed

YES_NO = forms.Select(choices=[("", _("any")), ("true", _("yes")), ("false", _("no"))])
COUNT = {"required": False, "min_value": 0, "max_value": 2**31}


class MarkerField(forms.CharField):
    """A marker phrase, case-insensitively; it must be one the analytics count."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        marker = Marker.objects.filter(phrase__iexact=value).first()
        if marker is None:
            known = ", ".join(Marker.objects.values_list("phrase", flat=True))
            raise forms.ValidationError(
                _("“%(value)s” is not a counted marker (counted: %(known)s).")
                % {"value": value, "known": known}
            )
        return marker


class AnalyticsFilterForm(ReviewFilterForm):
    # Here `since`/`until` always meant the day a trace finished; `flag`, the checks.
    ALIASES = {"since": "finished_since", "until": "finished_until", "flag": "checks"}

    review = forms.ChoiceField(
        required=False,
        help_text="awaiting: the same as pending.",
        choices=[*REVIEW_CHOICES, ("awaiting", _("awaiting review"))],
    )
    tokens_min = forms.IntegerField(**COUNT, help_text="Completion tokens of profiled traces.")
    tokens_max = forms.IntegerField(**COUNT)
    lines_min = forms.IntegerField(**COUNT)
    lines_max = forms.IntegerField(**COUNT)
    has = MarkerField(required=False, max_length=50, label=_("Has marker"))
    lacks = MarkerField(required=False, max_length=50, label=_("Lacks marker"))
    answer_match = forms.NullBooleanField(required=False, widget=YES_NO)
    profiled = forms.NullBooleanField(
        required=False, widget=YES_NO, help_text="Succeeded traces the analytics have profiled."
    )


PROFILE_FIELDS = ("tokens_min", "tokens_max", "lines_min", "lines_max", "has", "lacks",
                  "answer_match", "profiled")  # fmt: skip


def traces_filtered(data: dict) -> QuerySet:
    """The traces matching a valid AnalyticsFilterForm's ``filters()``, newest first."""
    data = dict(data)
    profile = {name: data.pop(name, None) for name in PROFILE_FIELDS}
    traces = traces_reviewed(**data).filter(
        between("profile__tokens", profile["tokens_min"], profile["tokens_max"])
        & between("profile__lines", profile["lines_min"], profile["lines_max"])
    )
    if profile["answer_match"] is not None:
        traces = traces.filter(profile__answer_match=profile["answer_match"])
    if profile["profiled"] is not None:
        traces = traces.filter(profile__isnull=not profile["profiled"])
    if profile["has"]:
        traces = traces.filter(Exists(_marker_in_trace(profile["has"])))
    if profile["lacks"]:
        traces = traces.filter(profile__isnull=False).exclude(
            Exists(_marker_in_trace(profile["lacks"]))
        )
    return traces.order_by("-finished_at", "-pk")


def _marker_in_trace(marker: Marker) -> QuerySet:
    return MarkerCount.objects.filter(trace=OuterRef("pk"), marker=marker)
