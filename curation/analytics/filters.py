"""The drill-down list's filters: every figure on the dashboards links to a list filtered so."""

from datetime import date, datetime, time

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from expansion.models import Trace

from ..models import Marker, MarkerCount, ReviewDecision
from ..models import TraceReview as Review

REVIEW_CHOICES = [("", "any"), ("awaiting", "awaiting review"), *Review.Status.choices]


DAYS = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(9000, 1, 1))]


def _local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class MarkerField(forms.CharField):
    """A marker phrase, case-insensitively; it must be one the analytics count."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        marker = Marker.objects.filter(phrase__iexact=value).first()
        if marker is None:
            known = ", ".join(Marker.objects.values_list("phrase", flat=True))
            raise forms.ValidationError(f"“{value}” is not a counted marker (counted: {known}).")
        return marker


class TraceFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "any"), *Trace.Status.choices])
    review = forms.ChoiceField(required=False, choices=REVIEW_CHOICES)
    prompt = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    endpoint = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    model = forms.CharField(required=False, max_length=200)
    annotator = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    reviewer = forms.IntegerField(required=False, min_value=1, max_value=2**62,
                                  help_text="Traces this reviewer decided on.")  # fmt: skip
    since = forms.DateField(required=False, validators=DAYS, help_text="Finished on or after.")
    until = forms.DateField(required=False, validators=DAYS, help_text="Finished before.")
    decided_since = forms.DateField(required=False, validators=DAYS)
    decided_until = forms.DateField(required=False, validators=DAYS)
    tokens_min = forms.IntegerField(required=False, min_value=0, max_value=2**31)
    tokens_max = forms.IntegerField(required=False, min_value=0, max_value=2**31)
    lines_min = forms.IntegerField(required=False, min_value=0, max_value=2**31)
    lines_max = forms.IntegerField(required=False, min_value=0, max_value=2**31)
    has = MarkerField(required=False, max_length=50, label="Has marker")
    lacks = MarkerField(required=False, max_length=50, label="Lacks marker")
    flag = forms.MultipleChoiceField(required=False, choices=[(f, f) for f in Trace.FLAGS],
                                     help_text="Checks that flagged the trace.")  # fmt: skip
    clear = forms.MultipleChoiceField(required=False, choices=[(f, f) for f in Trace.FLAGS],
                                      help_text="Checks that passed.")  # fmt: skip
    answer_match = forms.NullBooleanField(required=False, widget=forms.Select(
        choices=[("", "any"), ("true", "yes"), ("false", "no")]))  # fmt: skip
    profiled = forms.NullBooleanField(required=False, widget=forms.Select(
        choices=[("", "any"), ("true", "yes"), ("false", "no")]),
        help_text="Succeeded traces the analytics have profiled.")  # fmt: skip


def _between(field: str, low, high) -> Q:
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lt": high})
    return q


def _days(field: str, since: date | None, until: date | None) -> Q:
    return _between(
        field,
        _local_midnight(since) if since else None,
        _local_midnight(until) if until else None,
    )


def _review(state: str) -> Q:
    if state == "awaiting":
        return Q(status=Trace.Status.SUCCEEDED) & (
            Q(review__isnull=True) | Q(review__status=Review.Status.PENDING)
        )
    return Q(review__status=state)


def traces_filtered(data: dict) -> QuerySet:
    """The traces matching a valid form's ``cleaned_data``, newest first."""
    q = Q()
    for name, lookup in (("status", "status"), ("prompt", "prompt_id"),
                         ("endpoint", "endpoint_id"), ("model", "endpoint__model"),
                         ("annotator", "annotation__annotator_id")):  # fmt: skip
        if data.get(name) not in (None, ""):
            q &= Q(**{lookup: data[name]})
    if data.get("review"):
        q &= _review(data["review"])
    q &= _days("finished_at", data.get("since"), data.get("until"))
    q &= _days("review__decided_at", data.get("decided_since"), data.get("decided_until"))
    q &= _between("profile__tokens", data.get("tokens_min"), data.get("tokens_max"))
    q &= _between("profile__lines", data.get("lines_min"), data.get("lines_max"))
    for name in data.get("flag") or []:
        q &= Q(**{Trace.FLAGS[name]: True})
    for name in data.get("clear") or []:
        q &= Q(status=Trace.Status.SUCCEEDED, **{Trace.FLAGS[name]: False})
    if data.get("answer_match") is not None:
        q &= Q(profile__answer_match=data["answer_match"])
    if data.get("profiled") is not None:
        q &= Q(profile__isnull=not data["profiled"])
    traces = Trace.objects.filter(q)
    if data.get("reviewer"):
        decided = ReviewDecision.objects.filter(trace=OuterRef("pk"), reviewer_id=data["reviewer"])
        traces = traces.filter(Exists(decided))
    if data.get("has"):
        traces = traces.filter(Exists(_marker_in_trace(data["has"])))
    if data.get("lacks"):
        traces = traces.filter(profile__isnull=False).exclude(
            Exists(_marker_in_trace(data["lacks"]))
        )
    return traces.order_by("-finished_at", "-pk")


def _marker_in_trace(marker: Marker) -> QuerySet:
    return MarkerCount.objects.filter(trace=OuterRef("pk"), marker=marker)
