from django import forms
from django.contrib import admin, messages

from .endpoints import endpoint_save
from .models import LLMBatch, LLMEndpoint, PromptVersion, Trace, TraceNorm
from .prompts import prompt_version_create, prompt_version_edit
from .rollouts import difficulty_admin  # noqa: F401  (registers ProblemDifficultyAdmin)


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "base_url", "max_in_flight", "use_batches", "is_simulated",
                    "is_active", "is_default"]  # fmt: skip
    list_filter = ["is_active", "is_simulated", "is_default", "use_batches"]

    def save_model(self, request, obj, form, change):
        endpoint_save(endpoint=obj)


class PromptVersionForm(forms.ModelForm):
    make_active = forms.BooleanField(
        required=False,
        initial=False,
        label="Make this version active",
        help_text="New submissions are expanded with the active version. Left unticked, "
        "saving does not change which version is active.",
    )

    class Meta:
        model = PromptVersion
        fields = ["name", *PromptVersion.CONTENT_FIELDS]  # is_active: only with make_active


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    """Saving a version that traces already used creates a new version instead; which
    version is active changes only when the admin ticks "Make this version active"."""

    form = PromptVersionForm
    list_display = ["__str__", "active_in_list", "target_tokens_min", "target_tokens_max",
                    "created_at"]  # fmt: skip
    readonly_fields = ["version", "active", "content_hash", "created_at"]
    list_filter = ["name", "is_active"]

    def get_readonly_fields(self, request, obj=None):
        # A version belongs to its prompt: an edit is a version of the same name.
        return [*self.readonly_fields, "name"] if obj else self.readonly_fields

    @admin.display(description="Active", ordering="is_active")
    def active_in_list(self, obj) -> str:
        return "Active: new submissions use it" if obj.is_active else ""

    @admin.display(description="Active")
    def active(self, obj) -> str:
        if obj.pk and obj.is_active:
            return "Active: new submissions are expanded with this version."
        active = PromptVersion.objects.filter(is_active=True).first()
        return f"Not active. The active version is {active}." if active else "Not active."

    def save_model(self, request, obj, form, change):
        activate = form.cleaned_data.get("make_active", False)
        fields = {name: getattr(obj, name) for name in PromptVersion.CONTENT_FIELDS}
        if change:
            saved = prompt_version_edit(prompt_id=obj.pk, activate=activate, **fields)
        else:
            saved = prompt_version_create(name=obj.name, activate=activate, **fields)
        if saved.pk != obj.pk and change:
            self.message_user(
                request, f"{obj} has traces, so your edit was saved as {saved}.", messages.INFO
            )
        saved.refresh_from_db()
        if not saved.is_active:
            active = PromptVersion.objects.filter(is_active=True).first()
            self.message_user(
                request,
                f"{saved} is not the active version; new submissions still use "
                f"{active or 'the default wording'}.",
                messages.WARNING,
            )
        obj.pk, obj.version, obj.is_active = saved.pk, saved.version, saved.is_active
        obj.content_hash, obj.created_at = saved.content_hash, saved.created_at
        obj._state.adding = False


@admin.register(Trace)
class TraceAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "annotation",
        "prompt",
        "endpoint",
        "status",
        "error_kind",
        "completion_tokens",
        "cost",
        "created_at",
    ]
    list_filter = ["status", "error_kind", "is_simulated", "endpoint", "prompt"]
    list_select_related = ["annotation", "prompt", "endpoint"]
    raw_id_fields = ["annotation"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Trace._meta.fields if not field.generated]

    def has_add_permission(self, request):
        return False


@admin.register(LLMBatch)
class LLMBatchAdmin(admin.ModelAdmin):
    """Batches are made and read by the poller; the admin shows where each one is."""

    list_display = ["id", "provider_id", "endpoint", "kind", "status", "jobs", "created_at",
                    "ingested_at"]  # fmt: skip
    list_filter = ["status", "endpoint"]
    list_select_related = ["endpoint"]
    actions = ["cancel_at_provider"]

    @admin.action(description="Cancel at the provider (answers so far are kept, the rest resent)")
    def cancel_at_provider(self, request, queryset):
        from .batches.flow import batch_cancel
        from .llm import LLMError

        for batch in queryset.exclude(status__in=LLMBatch.ENDED):
            try:
                batch_cancel(batch_id=batch.pk)
            except LLMError as error:
                self.message_user(request, f"{batch}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{batch}: cancelling", messages.INFO)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in LLMBatch._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(TraceNorm)
class TraceNormAdmin(admin.ModelAdmin):
    """The medians the relative checks use, to read: `traces_refresh_norms` writes them."""

    list_display = ["kind", "key", "median", "traces", "computed_at"]
    list_filter = ["kind"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


from .rollouts import admin as rollouts_admin  # noqa: E402, F401 - registers the rollout models
