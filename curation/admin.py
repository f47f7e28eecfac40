from django.contrib import admin

from .models import Marker, ReviewDecision, TraceReview


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(admin.ModelAdmin):
    """The audit trail: readable, never editable or deletable."""

    list_display = ["trace", "reviewer", "decision", "reason", "created_at"]
    list_filter = ["decision", "reason"]
    list_select_related = ["trace", "reviewer"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(TraceReview)
class TraceReviewAdmin(admin.ModelAdmin):
    list_display = ["trace", "status", "approvals", "rank", "claimed_by", "decided_at"]
    list_filter = ["status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Marker)
class MarkerAdmin(admin.ModelAdmin):
    """Markers the analytics count. A new one is added (and counted) from the dashboard."""

    list_display = ["phrase", "builtin", "created_at", "counted_at"]
    readonly_fields = ["builtin", "created_at", "counted_at"]

    def has_add_permission(self, request):
        return False  # the dashboard adds them and has a worker count them

    def has_change_permission(self, request, obj=None):
        return False  # changing the phrase would leave its counts wrong

    def has_delete_permission(self, request, obj=None):
        return obj is None or not obj.builtin
