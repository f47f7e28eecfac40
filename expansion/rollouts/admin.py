"""Rollouts in the admin: solve prompt versions, campaigns (created through the same service
as the API and the command, steered by actions) and their samples, read-only."""

from django import forms
from django.contrib import admin, messages

from ..models import RolloutCampaign, RolloutSample, SolvePrompt
from .prompts import solve_prompt_create, solve_prompt_default, solve_prompt_edit
from .prompts import solve_prompt_problems as prompt_problems
from .services import (
    FILTERS,
    CampaignRefused,
    campaign_cancel,
    campaign_check,
    campaign_create,
    campaign_pause,
    campaign_resume,
    campaign_run,
    campaign_summary,
)


class SolvePromptForm(forms.ModelForm):
    class Meta:
        model = SolvePrompt
        fields = ["name", *SolvePrompt.CONTENT_FIELDS]

    def clean(self):
        data = super().clean()
        content = {field: data.get(field, "") for field in SolvePrompt.CONTENT_FIELDS}
        for field, problem in prompt_problems(SolvePrompt(**content)).items():
            self.add_error(field, problem)
        return data


@admin.register(SolvePrompt)
class SolvePromptAdmin(admin.ModelAdmin):
    """Saving a version a campaign sampled with creates the next version instead."""

    form = SolvePromptForm
    list_display = ["__str__", "thought_format", "content_hash", "created_at"]
    list_filter = ["name", "thought_format"]
    readonly_fields = ["version", "content_hash", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        content = {field: form.cleaned_data[field] for field in SolvePrompt.CONTENT_FIELDS}
        if not change:
            saved = solve_prompt_create(name=form.cleaned_data["name"], **content)
        else:
            saved = solve_prompt_edit(prompt_id=obj.pk, **content)
            if saved.pk != obj.pk:
                messages.info(request, f"A campaign sampled with {obj}: the edit is {saved}.")
        obj.pk, obj.version, obj.content_hash = saved.pk, saved.version, saved.content_hash
        obj._state.adding = False


class CampaignForm(forms.ModelForm):
    """A new campaign: its problems are chosen by the problem-list filters."""

    source = forms.CharField(required=False, help_text="Only problems of this source.")
    subject = forms.CharField(required=False)
    level = forms.IntegerField(required=False, min_value=1)
    status = forms.CharField(required=False, help_text="A problem-list status, e.g. open.")

    class Meta:
        model = RolloutCampaign
        fields = ["name", "endpoint", "prompt", "samples_per_problem", "temperature", "top_p",
                  "max_tokens"]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["prompt"].required = False
        self.fields["prompt"].help_text = "Empty: the default solve prompt."

    def campaign_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"], "endpoint": data["endpoint"],
            "prompt": data.get("prompt") or solve_prompt_default(),
            "samples_per_problem": data["samples_per_problem"],
            "temperature": data["temperature"], "top_p": data["top_p"],
            "max_tokens": data.get("max_tokens"),
            "filters": {name: data[name] for name in FILTERS if data.get(name) not in (None, "")},
        }  # fmt: skip

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                campaign_check(**self.campaign_fields())
            except CampaignRefused as error:
                raise forms.ValidationError(error.message) from error
        return data


def _steer(name: str, steer, done: str):
    def action(modeladmin, request, queryset):
        for campaign in queryset:
            try:
                count = steer(campaign_id=campaign.pk)
            except CampaignRefused as error:
                modeladmin.message_user(request, error.message, messages.ERROR)
                continue
            shown = count if isinstance(count, int) else ""
            modeladmin.message_user(request, f"{campaign.name}: {done.format(shown)}")

    action.__name__ = name  # the admin tells actions apart by name
    return action


@admin.register(RolloutCampaign)
class RolloutCampaignAdmin(admin.ModelAdmin):
    """Created here, by the API or by ``manage.py rollouts create``; a campaign's settings
    do not change once its samples exist: pause, resume, cancel or run it again."""

    list_display = ["name", "state", "endpoint", "prompt", "samples_per_problem", "problems",
                    "progress", "created_at"]  # fmt: skip
    list_filter = ["state", "endpoint"]
    search_fields = ["name"]
    actions = [
        admin.action(description="Pause the selected campaigns")(
            _steer("pause_campaigns", campaign_pause, "paused")),
        admin.action(description="Resume the selected campaigns")(
            _steer("resume_campaigns", campaign_resume, "resumed, {} samples sent")),
        admin.action(description="Cancel the selected campaigns")(
            _steer("cancel_campaigns", campaign_cancel, "cancelled, {} samples cancelled")),
        admin.action(description="Run again (send the unfinished samples)")(
            _steer("run_campaigns", campaign_run, "{} samples sent")),
    ]  # fmt: skip

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CampaignForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["name", "endpoint", "prompt", "samples_per_problem", "temperature", "top_p",
                "max_tokens", "filters", "problems", "state", "progress", "created_by",
                "created_at"]  # fmt: skip

    def get_fields(self, request, obj=None):
        if obj is None:
            return [*CampaignForm.Meta.fields, *FILTERS]
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Samples")
    def progress(self, obj) -> str:
        summary = campaign_summary(obj)
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_status"].items()))
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_verdict"].items()))
        return f"{summary['samples']}: {statuses}; {verdicts}"

    def save_model(self, request, obj, form, change):
        if change:
            return  # nothing of a campaign is edited here; the actions steer it
        campaign = campaign_create(**form.campaign_fields(), user=request.user)
        obj.pk, obj.problems, obj.state = campaign.pk, campaign.problems, campaign.state
        obj._state.adding = False
        if campaign.without_reference:
            messages.warning(
                request,
                f"{campaign.without_reference} of the {campaign.problems} "
                "problems have no reference answer: their samples verify nothing.",
            )


@admin.register(RolloutSample)
class RolloutSampleAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "verdict", "answer", "completion_tokens", "cost"]
    list_filter = ["campaign", "status", "verdict", "flag_truncated", "flag_repetition"]
    search_fields = ["problem__external_id"]
    list_select_related = ["campaign", "problem"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
