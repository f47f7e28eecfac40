from django import forms

from .selectors import ANNOTATION_STATUSES


class ProblemFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, label="Search")
    source = forms.CharField(required=False, max_length=100)
    subject = forms.CharField(required=False, max_length=100)
    level = forms.IntegerField(required=False, min_value=0, max_value=32767)
    status = forms.ChoiceField(
        required=False, choices=[("", "Any status"), *ANNOTATION_STATUSES.items()]
    )

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "search": (data.get("q") or "").strip(),
            "source": data.get("source") or "",
            "subject": data.get("subject") or "",
            "level": data.get("level"),
            "annotation_status": data.get("status") or "",
        }
