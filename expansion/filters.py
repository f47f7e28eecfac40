"""The one trace filter form: the job list, the trace API, the review queue, the analytics
drill-down and the export all read their filters through it (curation adds its own fields
in subclasses) and pass its ``cleaned_data`` to ``selectors.traces_matching``."""

from datetime import date

from django import forms
from django.contrib import messages
from django.core.validators import MaxValueValidator, MinValueValidator
from django.forms.utils import pretty_name
from django.http import QueryDict
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from annotator.forms import LevelField

from .models import Trace

MAX_ID = 2**63 - 1
DAYS = [MinValueValidator(date(1900, 1, 1)), MaxValueValidator(date(9000, 1, 1))]
CHECK_CHOICES = [(name, capfirst(Trace.FLAG_WORDS[name])) for name in Trace.FLAGS]
# The pages offer these as select lists; the API takes the id the list would send.
CHOOSE = "Choose one from the list (an id, in the API)."


class IdField(forms.IntegerField):
    """The id of a record the page offers in a select list; any other value is refused."""

    def __init__(self, **kwargs):
        messages = {"invalid": CHOOSE, "min_value": CHOOSE, "max_value": CHOOSE}
        super().__init__(required=False, min_value=1, max_value=MAX_ID,
                         error_messages=messages, **kwargs)  # fmt: skip


class EndpointField(IdField):
    """An endpoint by id, or by name (the export command takes either)."""

    def to_python(self, value):
        if isinstance(value, str) and value.strip() and not value.strip().isdigit():
            return value.strip()[:100]
        return super().to_python(value)

    def validate(self, value):
        if not isinstance(value, str):
            super().validate(value)

    def run_validators(self, value):
        if not isinstance(value, str):
            super().run_validators(value)


def day_field(label: str, help_text: str) -> forms.DateField:
    widget = forms.DateInput(attrs={"type": "date"})
    return forms.DateField(required=False, validators=DAYS, label=label, help_text=help_text,
                           widget=widget)  # fmt: skip


class TraceFilterForm(forms.Form):
    """Filters of expansion's own columns. Bind it with ``bind`` so that aliases apply."""

    # Old public names kept for links and scripts that use them: old name -> field.
    ALIASES = {"since": "created_since", "until": "created_until"}
    # Fields that take several values (``?checks=a&checks=b``).
    LISTS = ("checks", "clear")

    status = forms.ChoiceField(
        required=False, choices=[("", _("Any status")), *Trace.Status.choices]
    )
    annotation = IdField(label=_("Annotation id"))
    endpoint = EndpointField(label=_("Endpoint"))
    prompt = IdField(label=_("Prompt version"))
    model = forms.CharField(required=False, max_length=200, help_text="The endpoint's model.")
    annotator = IdField(label=_("Annotator"))
    source = forms.CharField(required=False, max_length=100, label=_("Problem source"))
    subject = forms.CharField(required=False, max_length=100)
    level = LevelField(required=False, help_text="5 or Level 5.")
    created_since = day_field(_("Created since"), "Created on or after this day.")
    created_until = day_field(_("Created until"), "Created before this day.")
    finished_since = day_field(_("Finished since"), "Finished on or after this day.")
    finished_until = day_field(_("Finished until"), "Finished before this day.")
    checks = forms.MultipleChoiceField(
        required=False,
        choices=CHECK_CHOICES,
        label=_("Flagged by"),
        help_text="Checks that flagged the trace (all of them).",
    )
    clear = forms.MultipleChoiceField(
        required=False,
        choices=CHECK_CHOICES,
        label=_("Passed"),
        help_text="Checks the trace passed (all of them).",
    )
    simulated = forms.NullBooleanField(required=False, widget=forms.Select(
        choices=[("", _("any")), ("true", _("yes")), ("false", _("no"))]))  # fmt: skip
    q = forms.CharField(required=False, max_length=200, label=_("Text in the thought"),
                        help_text="Words of the thought or solution, e.g. wait.")  # fmt: skip

    @classmethod
    def bind(cls, params, **kwargs) -> "TraceFilterForm":
        """The form bound to request parameters (a QueryDict) or to a plain dict of values;
        an old name counts when its new name is not given, and blank values are left out."""
        getlist = getattr(params, "getlist", None)
        data = QueryDict(mutable=True)
        for key in params:
            name = cls.ALIASES.get(key, key)
            if name not in cls.base_fields or (name != key and name in params):
                continue
            if name in cls.LISTS:
                value = getlist(key) if getlist else params[key]
                values = [value] if isinstance(value, str) else list(value or [])
                data.setlist(name, [v for v in values if v not in (None, "")])
            elif params.get(key) not in (None, ""):
                data[name] = params.get(key)
        return cls(data, **kwargs)

    def filters(self) -> dict:
        """The cleaned values that filter something (call after ``is_valid``)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", [])}

    def page_filters(self, request) -> dict:
        """The filters a page applies: the valid ones. Each refused one is left out and said
        in the page's messages, so the list still shows what the other filters match."""
        if self.is_valid():
            return self.filters()
        messages.error(
            request, gettext("Some filters were ignored.") + " " + " ".join(self.refusals())
        )
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "", [])}

    def refusals(self) -> list[str]:
        """Each refused filter in words: its label, then what to do."""
        said = []
        for name, errors in self.errors.items():
            label = self.fields[name].label or pretty_name(name)
            for error in errors:
                said.append(f"{label}: {error[:1].lower()}{error[1:]}")
        return said

    def offer_choices(self, choices: dict) -> None:
        """Show endpoint, prompt version and annotator as select lists of these choices."""
        for name, (blank, options) in choices.items():
            self.fields[name].widget = forms.Select(choices=[("", blank), *options])
