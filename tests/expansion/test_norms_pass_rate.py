"""Overthinking by pass rate: with a difficulty campaign, a trace is compared with the traces
of problems the campaign's model solves as often as its own, not with its whole level (the
easy problems are where long-thought models spend many times the tokens they need)."""

import pytest

from annotator.models import WorkspaceSettings
from expansion.models import Trace, TraceNorm
from expansion.norms import norms_for, norms_refresh, pass_rate_bucket
from expansion.rechecks import traces_check_again
from tests.factories import (
    AnnotationFactory,
    CampaignFactory,
    DifficultyFactory,
    ProblemFactory,
    TraceFactory,
)

pytestmark = pytest.mark.django_db

LEVEL = 4


def traces_at(campaign, *, correct: int | None, tokens: list[int]) -> list[Trace]:
    """Traces of level-4 problems, each its own problem solved in ``correct`` of 10 samples
    by the campaign's model (None: the campaign never sampled it)."""
    made = []
    for count in tokens:
        problem = ProblemFactory(level=LEVEL)
        if correct is not None:
            DifficultyFactory(problem=problem, campaign=campaign, samples=10, verified=10,
                              correct=correct)  # fmt: skip
        annotation = AnnotationFactory(problem=problem, status="submitted")
        checks = {"reflection_count": 3, "reflection_density": 2.0}
        made.append(TraceFactory(annotation=annotation, completion_tokens=count, checks=checks))
    return made


def difficulty_by(campaign) -> None:
    WorkspaceSettings.objects.update_or_create(
        pk=1, defaults={"lease_campaign": campaign.pk if campaign else None}
    )


def overthinking() -> set[int]:
    return set(Trace.objects.filter(flag_overthinking=True).values_list("pk", flat=True))


@pytest.fixture
def campaign():
    return CampaignFactory()


@pytest.fixture
def bank(campaign):
    """One level: easy problems answered in about 500 tokens, hard ones in about 3,000."""
    easy = traces_at(campaign, correct=10, tokens=[500] * 20)
    hard = traces_at(campaign, correct=1, tokens=[3000] * 20)
    (slow_easy,) = traces_at(campaign, correct=9, tokens=[2000])
    return {"easy": easy, "hard": hard, "slow_easy": slow_easy}


def test_an_easy_problem_taking_a_hard_problems_tokens_is_overthinking(campaign, bank):
    # By level alone, 2,000 tokens is this level's median: nothing to flag.
    norms_refresh()
    assert overthinking() == set()

    difficulty_by(campaign)
    norms_refresh()
    # 90-100% solved: its range's median is 500, and 2,000 is above 3 times that.
    assert overthinking() == {bank["slow_easy"].pk}
    rows = dict(
        TraceNorm.objects.filter(kind="tokens_pass").values_list("key", "median").order_by()
    )
    assert rows == {f"{campaign.pk}:4": 500, f"{campaign.pk}:0": 3000}

    # Without the difficulty campaign the flags go back to the level's.
    difficulty_by(None)
    norms_refresh()
    assert overthinking() == set()
    assert not TraceNorm.objects.filter(kind="tokens_pass").exists()


def test_a_range_with_too_few_traces_falls_back_to_the_level(campaign):
    traces_at(campaign, correct=None, tokens=[1000] * 20)  # never sampled: by level
    (few,) = traces_at(campaign, correct=10, tokens=[3500])  # alone in 80-100%
    (long,) = traces_at(campaign, correct=None, tokens=[3500])
    difficulty_by(campaign)
    norms_refresh()
    # The level's median (1,000 over 22 traces) judges both: its range has 1 trace.
    assert overthinking() == {few.pk, long.pk}


def test_only_the_campaign_chosen_counts(campaign, bank):
    other = CampaignFactory()
    # Another campaign finds the slow easy problem hard: it does not change the flags.
    DifficultyFactory(problem=bank["slow_easy"].annotation.problem, campaign=other, correct=0)
    difficulty_by(campaign)
    norms_refresh()
    assert overthinking() == {bank["slow_easy"].pk}


def test_a_new_trace_reads_its_ranges_norm(campaign, bank, django_assert_num_queries):
    difficulty_by(campaign)
    norms_refresh()
    WorkspaceSettings.current()  # cached, as in a worker between saves
    problem = bank["slow_easy"].annotation.problem
    with django_assert_num_queries(2):
        norms = norms_for(level=LEVEL, prompt_id=bank["slow_easy"].prompt_id,
                          problem_id=problem.pk)  # fmt: skip
    assert (norms.tokens_median, norms.tokens_traces, norms.pass_rate_range) == (500, 21, "80–100%")
    never = ProblemFactory(level=LEVEL)
    norms = norms_for(level=LEVEL, prompt_id=bank["slow_easy"].prompt_id, problem_id=never.pk)
    assert (norms.tokens_median, norms.tokens_traces, norms.pass_rate_range) == (2000, 41, None)


def test_checking_again_uses_the_ranges(campaign, bank):
    difficulty_by(campaign)
    norms_refresh()
    Trace.objects.update(flag_overthinking=False)
    assert traces_check_again() == 41
    assert overthinking() == {bank["slow_easy"].pk}


def test_the_review_page_says_which_traces_the_trace_is_compared_with(
    client_as, reviewer_user, campaign, bank
):
    difficulty_by(campaign)
    norms_refresh()
    page = client_as(reviewer_user).get(f"/review/{bank['slow_easy'].pk}/").content.decode()
    assert "the median of problems of pass rate 80–100% is 500 over 21 traces" in page
    page = client_as(reviewer_user).get(f"/review/{bank['hard'][0].pk}/").content.decode()
    assert "Pass rate 0–20%: median 3000 tokens over 20 traces" in page


@pytest.mark.parametrize(
    ("rate", "bucket"),
    [(0.0, 0), (0.19, 0), (0.2, 1), (3 / 5, 3), (0.7, 3), (0.8, 4), (1.0, 4), (7 / 35, 1)],
)
def test_pass_rate_ranges(rate, bucket):
    assert pass_rate_bucket(rate) == bucket
