"""The admin's view of what each campaign's samples say of a problem: figures to read (one
writer recomputes them, ``verifying.difficulty_recompute``) and an admin's dispute check."""

from django.contrib import admin

from ..models import ProblemDifficulty
from .disputes import difficulty_dispute_check


@admin.register(ProblemDifficulty)
class ProblemDifficultyAdmin(admin.ModelAdmin):
    list_display = ["problem", "campaign", "correct", "verified", "pass_rate", "majority_answer",
                    "majority_count", "reference_disputed", "dispute_checked_at"]  # fmt: skip
    list_filter = ["campaign", "reference_disputed"]
    list_select_related = ["problem", "campaign"]
    search_fields = ["problem__source", "problem__external_id", "majority_answer"]
    actions = ["mark_disputes_checked"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in ProblemDifficulty._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Mark the selected disputed reference answers checked")
    def mark_disputes_checked(self, request, queryset):
        disputed = list(queryset.filter(reference_disputed=True, dispute_checked_at=None))
        for difficulty in disputed:
            difficulty_dispute_check(
                problem_id=difficulty.problem_id,
                campaign_id=difficulty.campaign_id,
                user=request.user,
            )
        self.message_user(request, f"{len(disputed)} disputed reference answer(s) marked checked.")
