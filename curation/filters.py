"""Curation's trace filters, layered on expansion's one trace filter form."""

from django import forms
from django.utils.translation import gettext_lazy as _

from annotator.selectors import benchmark_names
from expansion.filters import IdField, TraceFilterForm, day_field

from .models import TraceReview

# "pending": a succeeded trace with no decision yet (never opened, or opened and not decided).
REVIEW_CHOICES = [("", _("any")), *TraceReview.Status.choices]


class ReviewFilterForm(TraceFilterForm):
    """The trace filters and where a trace stands in review."""

    review = forms.ChoiceField(required=False, choices=REVIEW_CHOICES,
                               help_text="pending: succeeded and not decided yet.")  # fmt: skip
    reviewer = IdField(label=_("Reviewer"), help_text="Traces this reviewer decided on.")
    decided_since = day_field(_("Decided since"), "Last decided on or after this day.")
    decided_until = day_field(_("Decided until"), "Last decided before this day.")


# What the step judge found in a trace (its succeeded jobs), or that its job failed.
JUDGE_CHOICES = [
    ("invented", _("Judge: invented step")),
    ("early_fix", _("Judge: early fix")),
    ("unrecorded_error", _("Judge: a wrong step the record does not contain")),
    ("failed", _("Judge job failed")),
]


class QueueFilterForm(TraceFilterForm):
    """The review queue's filters: it lists succeeded traces awaiting a decision only."""

    status = None
    clear = None
    LISTS = ("checks", "judge")
    judge = forms.MultipleChoiceField(
        required=False, choices=JUDGE_CHOICES, label=_("Judge found"),
        help_text="What the step judge found (all of them), or that its job failed.",
    )  # fmt: skip


class BenchmarkNamesField(forms.Field):
    """Registered benchmark names, as ``aime24,math500`` or a list; an unknown one is named."""

    def to_python(self, value) -> list[str]:
        if value in (None, ""):
            return []
        parts = value.split(",") if isinstance(value, str) else list(value)
        return sorted({str(part).strip() for part in parts if str(part).strip()})

    def validate(self, value) -> None:
        known = set(benchmark_names())
        unknown = [name for name in value if name not in known]
        if unknown:
            raise forms.ValidationError(
                _("No benchmark named %(unknown)s; registered: %(known)s.")
                % {"unknown": ", ".join(unknown), "known": ", ".join(sorted(known)) or _("none")}
            )


class ExportFilterForm(ReviewFilterForm):
    """The filters of an export (``export_dataset``, ``POST /api/exports/``). Here ``status``
    is the review status, as the option always meant; every trace exported has succeeded."""

    status = forms.ChoiceField(required=False, choices=[
        (s, s) for s in ("approved", "rejected", "pending", "any")])  # fmt: skip
    review = None
    clear = None
    LISTS = ("checks",)
    min_tokens = forms.IntegerField(required=False, min_value=0, max_value=2**31 - 1)
    checks_passed = forms.BooleanField(required=False, help_text="No automatic check flagged it.")
    include_simulated = forms.BooleanField(required=False)
    allow_contaminated = BenchmarkNamesField(
        required=False, label=_("Allow benchmarks"),
        help_text="Keep the traces of problems in these benchmarks (comma-separated names).",
    )  # fmt: skip
