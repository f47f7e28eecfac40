from django.contrib import admin, messages

from .models import LLMEndpoint, PromptVersion, Trace
from .prompts import prompt_version_create


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "model", "base_url", "max_in_flight", "is_simulated", "is_active",
                    "is_default"]  # fmt: skip
    list_filter = ["is_active", "is_simulated", "is_default"]


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    """Saving a version that traces already used creates a new version instead."""

    list_display = ["__str__", "is_active", "target_tokens_min", "target_tokens_max", "created_at"]
    readonly_fields = ["version", "content_hash", "created_at"]
    list_filter = ["name", "is_active"]

    def save_model(self, request, obj, form, change):
        if change and obj.traces.exists():
            fields = {name: getattr(obj, name) for name in PromptVersion.CONTENT_FIELDS}
            new = prompt_version_create(name=obj.name, is_active=obj.is_active, **fields)
            PromptVersion.objects.filter(pk=obj.pk).update(
                is_active=False if new.is_active else obj.is_active
            )
            self.message_user(
                request, f"{obj} has traces, so your edit was saved as {new}.", messages.INFO
            )
            obj.pk, obj.version = new.pk, new.version
        else:
            if not obj.version:
                latest = PromptVersion.objects.filter(name=obj.name).order_by("-version").first()
                obj.version = latest.version + 1 if latest else 1
            obj.content_hash = obj.compute_hash()
            super().save_model(request, obj, form, change)
        if obj.is_active:
            PromptVersion.objects.exclude(pk=obj.pk).update(is_active=False)


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
