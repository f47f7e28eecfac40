from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html_join
from rest_framework.authtoken.models import TokenProxy

from . import services
from .models import Annotation, AnnotationRevision, ApiToken, Problem, WorkspaceSettings


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records that are read in the admin and never added, changed or deleted there."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "source", "subject", "level", "updated_at"]
    list_filter = ["source", "subject", "level"]
    search_fields = ["external_id", "statement"]
    readonly_fields = ["created_at", "updated_at"]


def _steps_as_text(steps) -> str:
    """Steps as escaped text lines: user text is never rendered as HTML in the admin."""
    rows = ((step["kind"], step["text"], "; ".join(step["notes"]) or "none") for step in steps)
    return format_html_join("\n", "<p><b>{}</b> {} <i>(notes: {})</i></p>", rows)


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    fields = ["version", "saved_by", "created_at", "final_answer"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
    list_display = ["id", "problem", "annotator", "status", "version", "answer_check", "updated_at"]
    list_filter = ["status", "answer_check"]
    list_select_related = ["problem", "annotator"]
    search_fields = ["problem__external_id", "annotator__username"]
    raw_id_fields = ["problem", "annotator"]
    readonly_fields = ["steps_display", "version", "created_at", "updated_at", "submitted_at"]
    exclude = ["steps"]
    inlines = [RevisionInline]

    @admin.display(description="Steps")
    def steps_display(self, obj):
        return _steps_as_text(obj.steps)


@admin.register(AnnotationRevision)
class AnnotationRevisionAdmin(ReadOnlyAdmin):
    list_display = ["annotation", "version", "saved_by", "created_at"]
    list_select_related = ["annotation__problem", "annotation__annotator", "saved_by"]
    raw_id_fields = ["annotation"]
    readonly_fields = [
        "annotation",
        "version",
        "steps_display",
        "final_answer",
        "saved_by",
        "created_at",
    ]
    exclude = ["steps"]
    actions = ["restore"]

    @admin.display(description="Steps")
    def steps_display(self, obj):
        return _steps_as_text(obj.steps)

    @admin.action(description="Restore the selected revision (saved as a new version)")
    def restore(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one revision to restore.", messages.ERROR)
            return
        annotation = services.revision_restore(revision_id=queryset.get().pk, user=request.user)
        self.message_user(request, f"Restored as version {annotation.version} of {annotation}.")


@admin.register(WorkspaceSettings)
class WorkspaceSettingsAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return not WorkspaceSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


# Tokens are issued by POST /api/auth/token/ and kept hashed (annotator/tokens.py); DRF's
# plain-text token table is no longer used.
admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ["prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at"]
    list_filter = ["revoked_at", "expires_at"]
    search_fields = ["user__username", "prefix"]
    fields = list_display
    actions = ["revoke"]

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} token(s) revoked.", messages.SUCCESS)
