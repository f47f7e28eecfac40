from django.contrib import admin

from annotator.admin import ReadOnlyAdmin

from .judging.prompts import judge_prompt_create
from .models import JudgeJob, JudgePrompt, Marker, ReviewDecision, TraceReview


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    """The audit trail: readable, never editable or deletable."""

    list_display = ["trace", "reviewer", "decision", "reason", "created_at"]
    list_filter = ["decision", "reason"]
    list_select_related = ["trace", "reviewer"]


@admin.register(TraceReview)
class TraceReviewAdmin(ReadOnlyAdmin):
    list_display = ["trace", "status", "approvals", "rank", "claimed_by", "decided_at"]
    list_filter = ["status"]


@admin.register(Marker)
class MarkerAdmin(ReadOnlyAdmin):
    """Markers the analytics count. The dashboard adds them (and has a worker count them);
    a phrase is never changed, which would leave its counts wrong."""

    list_display = ["phrase", "builtin", "created_at", "counted_at"]

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.builtin


@admin.register(JudgePrompt)
class JudgePromptAdmin(admin.ModelAdmin):
    """A judge prompt's wording never changes once saved: an edit is saved as a new version
    (which "is active" and "after expansion" then apply to); those two are settings."""

    list_display = ["__str__", "is_active", "after_expansion", "created_at"]
    readonly_fields = ["version", "content_hash", "created_at"]
    fields = ["name", "system", "instructions", "is_active", "after_expansion", *readonly_fields]

    def save_model(self, request, obj, form, change):
        content = ("name", *JudgePrompt.CONTENT_FIELDS)
        if change and not set(form.changed_data) & set(content):
            if obj.is_active:
                JudgePrompt.objects.filter(is_active=True).exclude(pk=obj.pk).update(
                    is_active=False
                )
            obj.save(update_fields=["is_active", "after_expansion"])
            return
        saved = judge_prompt_create(
            name=obj.name, system=obj.system, instructions=obj.instructions,
            activate=obj.is_active,
        )  # fmt: skip
        JudgePrompt.objects.filter(pk=saved.pk).update(after_expansion=obj.after_expansion)
        obj.pk, obj.version, obj.content_hash = saved.pk, saved.version, saved.content_hash
        obj.created_at, obj.is_active = saved.created_at, saved.is_active
        if change:
            self.message_user(request, f"Saved as a new version, {saved}.")


@admin.register(JudgeJob)
class JudgeJobAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "prompt", "endpoint", "status", "error_kind", "created_at"]
    list_filter = ["status", "error_kind"]
