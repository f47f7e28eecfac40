from django.contrib import admin

from annotator.admin import ReadOnlyAdmin

from .models import Marker, ReviewDecision, TraceReview


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
