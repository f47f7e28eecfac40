import re

from django import forms
from django.utils.translation import gettext_lazy as _

from .difficulty import DISPUTES, SORTS
from .selectors import ANNOTATION_STATUSES

LEVEL = re.compile(r"(?:level\s*)?(\d{1,5})", re.IGNORECASE)


def parse_level(value) -> int | None:
    """A problem level written as ``5`` or as the list shows it, ``Level 5``; ValueError else."""
    if value in (None, ""):
        return None
    if isinstance(value, int):
        number = value
    else:
        match = LEVEL.fullmatch(str(value).strip())
        if match is None:
            raise ValueError(value)
        number = int(match.group(1))
    if not 0 <= number <= 32767:
        raise ValueError(value)
    return number


class LevelField(forms.Field):
    """The level filter of every list: ``5`` or ``Level 5``."""

    # Worded as the whole-number field it replaced, which API clients may match on.
    default_error_messages = {"invalid": "Enter a whole number."}

    def to_python(self, value) -> int | None:
        try:
            return parse_level(value)
        except ValueError as exc:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from exc


class ProblemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    source = forms.CharField(required=False, max_length=100)
    subject = forms.CharField(required=False, max_length=100)
    level = LevelField(required=False)
    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *ANNOTATION_STATUSES.items()]
    )
    contamination = forms.CharField(
        required=False, max_length=100,
        help_text="clean, contaminated (by any benchmark) or a benchmark's name.",
    )  # fmt: skip

    # What a rollout campaign says of each problem (reviewers' and admins' list only).
    campaign = forms.IntegerField(required=False, min_value=1)
    sort = forms.ChoiceField(required=False, choices=[("", "Source order"), *SORTS.items()])
    at_most = forms.IntegerField(
        required=False, min_value=0, max_value=32767,
        help_text="The model solves it in at most this many of its verified samples.",
    )  # fmt: skip
    dispute = forms.ChoiceField(required=False, choices=[("", "Any answer"), *DISPUTES.items()])

    def difficulty_kwargs(self) -> dict:
        """The rollout filters; an invalid one is ignored, the valid ones still apply."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "sort": data.get("sort") or "",
            "at_most": data.get("at_most"),
            "dispute": data.get("dispute") or "",
        }

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "search": (data.get("q") or "").strip(),
            "source": data.get("source") or "",
            "subject": data.get("subject") or "",
            "level": data.get("level"),
            "annotation_status": data.get("status") or "",
            "contamination": (data.get("contamination") or "").strip(),
        }
