"""An admin's check of a disputed reference answer (the samples' majority disagrees with it)."""

from django.db import transaction
from django.utils import timezone

from ..models import ProblemDifficulty


class NotDisputed(Exception):
    """The campaign's samples do not dispute the problem's reference answer."""


@transaction.atomic
def difficulty_dispute_check(*, problem_id: int, campaign_id: int, user) -> ProblemDifficulty:
    """Record that ``user`` checked the dispute; a later change of the majority answer clears
    the check (``difficulty_recompute``). ProblemDifficulty.DoesNotExist when the campaign
    has no figures for the problem, NotDisputed when they dispute nothing."""
    difficulty = ProblemDifficulty.objects.select_for_update().get(
        problem_id=problem_id, campaign_id=campaign_id
    )
    if not difficulty.reference_disputed:
        raise NotDisputed("The samples of this campaign do not dispute the reference answer.")
    difficulty.dispute_checked_by = user
    difficulty.dispute_checked_at = timezone.now()
    difficulty.save(update_fields=["dispute_checked_by", "dispute_checked_at", "updated_at"])
    return difficulty
