"""What a worker killed mid-verification leaves behind is put right by the requeue task:
a verdict never given is given, and a problem's figures that missed a verdict are
recomputed from its samples."""

import pytest
from django.utils import timezone

from expansion.models import ProblemDifficulty, RolloutSample
from expansion.tasks import requeue_stalled_rollout_samples
from tests.factories import CampaignFactory, DifficultyFactory, ProblemFactory, SampleFactory

pytestmark = pytest.mark.django_db


def test_figures_that_missed_a_verdict_are_recomputed(settings):
    problem = ProblemFactory(reference_answer="19", statement="What is 12+7?")
    campaign = CampaignFactory()
    now = timezone.now()
    for index, verdict in enumerate(["correct", "correct", "incorrect"]):
        SampleFactory(campaign=campaign, problem=problem, sample_index=index, verdict=verdict,
                      answer="19" if verdict == "correct" else "20", finished_at=now)  # fmt: skip
    # The figures of the first two samples only: the third's recompute died with its worker.
    DifficultyFactory(problem=problem, campaign=campaign, samples=2, verified=2, correct=2)
    requeue_stalled_rollout_samples()
    difficulty = ProblemDifficulty.objects.get(problem=problem, campaign=campaign)
    assert (difficulty.samples, difficulty.verified, difficulty.correct) == (3, 3, 2)
    assert difficulty.pass_rate == pytest.approx(2 / 3)


def test_a_verdict_cut_short_is_given_after_the_catch_up_delay(settings):
    settings.ROLLOUT_VERIFY_CATCH_UP_SECONDS = 60
    problem = ProblemFactory(reference_answer="72", statement="What is 9*8?")
    sample = SampleFactory(problem=problem, verdict="pending", answer="",
                           content="<think>\n9*8 is 72.\n</think>\n\nSo $\\boxed{72}$.",
                           finished_at=timezone.now() - timezone.timedelta(seconds=30))  # fmt: skip
    requeue_stalled_rollout_samples()
    assert RolloutSample.objects.get(pk=sample.pk).verdict == "pending"  # not yet: 30 s old
    settings.ROLLOUT_VERIFY_CATCH_UP_SECONDS = 10
    requeue_stalled_rollout_samples()
    assert RolloutSample.objects.get(pk=sample.pk).verdict == "correct"
    difficulty = ProblemDifficulty.objects.get(problem=problem, campaign=sample.campaign)
    assert (difficulty.samples, difficulty.correct) == (1, 1)
