"""A rollout sample's verdict and flags, and what a campaign's samples say of a problem."""

import pytest
from django.utils import timezone

from annotator import answer_check
from expansion.models import ProblemDifficulty
from expansion.prompts import SOLUTION_CLOSE, SOLUTION_OPEN, THOUGHT_CLOSE, THOUGHT_OPEN
from expansion.rollouts.verifying import answer_normalized, difficulty_recompute, sample_verify
from tests.factories import (
    CampaignFactory,
    DifficultyFactory,
    ProblemFactory,
    SampleFactory,
    SolvePromptFactory,
    UserFactory,
)
from tests.support.slow_compare import compare_or_hang

pytestmark = pytest.mark.django_db

THOUGHT = "Half of one is one over two. Wait, let me check: two halves make one. Yes."
FLAGS = ("flag_truncated", "flag_repetition", "flag_format", "flag_no_reflection")


def _sample(content: str, *, reference: str = r"\frac{1}{2}", thought_format: str = "think",
            finish_reason: str = "stop", **fields):  # fmt: skip
    campaign = CampaignFactory(prompt=SolvePromptFactory(thought_format=thought_format))
    return SampleFactory(
        campaign=campaign, problem=ProblemFactory(reference_answer=reference), content=content,
        finish_reason=finish_reason, verdict="pending", thought="", solution="", answer="",
        reference_answer="", **fields,
    )  # fmt: skip


def _think(answer: str, thought: str = THOUGHT) -> str:
    return f"<think>{thought}</think>\nSo the answer is {answer}."


def test_a_clean_correct_sample_is_split_verified_and_raises_no_flag():
    sample = _sample(_think(r"\boxed{\frac{1}{2}}"), completion_tokens=900)
    fields = sample_verify(sample)
    assert fields["thought"] == THOUGHT
    assert fields["solution"] == r"So the answer is \boxed{\frac{1}{2}}."
    assert fields["answer"] == r"\frac{1}{2}"
    assert fields["reference_answer"] == r"\frac{1}{2}"
    assert fields["verdict"] == "correct"
    assert fields["verified_at"] is not None
    assert not any(fields[flag] for flag in FLAGS)
    checks = fields["checks"]
    assert checks["matches_reference"] is True
    assert checks["reflection_count"] == 2  # "wait", "let me check"
    assert checks["completion_tokens"] == 900
    assert checks["format"] == [] and checks["repetition"] == []
    sample.refresh_from_db()
    assert sample.verdict == "pending"  # computed, not saved


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [("0.5", "correct"), (r"\dfrac{1}{2}", "correct"), ("1/3", "incorrect"), ("2", "incorrect")],
)
def test_the_boxed_answer_is_compared_with_the_reference_by_value(answer, verdict):
    fields = sample_verify(_sample(_think(rf"\boxed{{{answer}}}")))
    assert fields["verdict"] == verdict
    assert fields["answer"] == answer


def test_the_last_boxed_answer_of_the_solution_counts():
    fields = sample_verify(_sample(_think(r"\boxed{1/3}, no: \boxed{0.5}")))
    assert (fields["answer"], fields["verdict"]) == ("0.5", "correct")


def test_an_empty_box_is_unverified():
    fields = sample_verify(_sample(_think(r"\boxed{}")))
    assert fields["verdict"] == "unverified"
    assert fields["answer"] == ""
    assert fields["checks"]["format"] == ["empty_boxed"]


def test_no_boxed_answer_is_unverified_and_a_format_flag():
    fields = sample_verify(_sample(_think("one half")))
    assert fields["verdict"] == "unverified"
    assert fields["flag_format"] is True
    assert fields["checks"]["format"] == ["no_boxed"]


def test_an_answer_math_verify_cannot_read_is_unverified():
    fields = sample_verify(_sample(_think(r"\boxed{\text{}}")))
    assert fields["verdict"] == "unverified"
    assert fields["checks"]["matches_reference"] is None
    assert fields["checks"]["answer_timed_out"] is False


def test_a_comparison_that_runs_out_of_time_is_unverified(monkeypatch, tmp_path):
    pool = answer_check._Pool(function=compare_or_hang)
    monkeypatch.setattr(answer_check, "_pool", pool)
    real = answer_check.answers_compare
    monkeypatch.setattr(
        "expansion.rollouts.verifying.answers_compare",
        lambda gold, candidate: real(gold, candidate, timeout=0.3),
    )
    try:
        fields = sample_verify(_sample(_think(rf"\boxed{{hang:{tmp_path / 'pid'}}}")))
    finally:
        pool.stop()
    assert fields["verdict"] == "unverified"
    assert fields["checks"]["answer_timed_out"] is True
    assert fields["flag_format"] is False


def test_a_problem_without_reference_answer_is_no_reference():
    fields = sample_verify(_sample(_think(r"\boxed{0.5}"), reference=""))
    assert fields["verdict"] == "no_reference"
    assert fields["answer"] == "0.5"
    assert fields["flag_format"] is False


def test_an_answer_without_the_thought_format_is_thought_and_solution_both():
    content = r"Half of one. Wait, yes. \boxed{0.5}"
    fields = sample_verify(_sample(content))
    assert fields["thought"] == fields["solution"] == content
    assert fields["flag_format"] is True
    assert fields["checks"]["format"] == ["unsplit"]
    assert fields["verdict"] == "correct"  # the boxed answer is still read


def test_still_markers_split_a_still_prompt_answer():
    content = (f"{THOUGHT_OPEN}\n{THOUGHT}\n{THOUGHT_CLOSE}\n\n{SOLUTION_OPEN}\n"
               f"The answer is \\boxed{{0.5}}.\n{SOLUTION_CLOSE}")  # fmt: skip
    fields = sample_verify(_sample(content, thought_format="still"))
    assert fields["thought"] == THOUGHT
    assert fields["solution"] == r"The answer is \boxed{0.5}."
    assert (fields["verdict"], fields["flag_format"]) == ("correct", False)


def test_each_format_splits_only_its_own_markers():
    still = (f"{THOUGHT_OPEN}{THOUGHT}{THOUGHT_CLOSE}{SOLUTION_OPEN}\\boxed{{0.5}}"
             f"{SOLUTION_CLOSE}")  # fmt: skip
    assert sample_verify(_sample(still, thought_format="think"))["flag_format"] is True
    assert sample_verify(_sample(_think(r"\boxed{0.5}"), thought_format="still"))["flag_format"]


def test_a_thought_in_a_loop_is_a_repetition_flag():
    loop = "\n".join(["Let me add the two numbers again to be sure."] * 15)
    fields = sample_verify(_sample(_think(r"\boxed{0.5}", thought=f"Wait.\n{loop}")))
    assert fields["flag_repetition"] is True
    assert {"kind": "line", "count": 15} in [
        {"kind": loop["kind"], "count": loop["count"]} for loop in fields["checks"]["repetition"]
    ]


def test_a_thought_without_reflection_markers_is_flagged():
    fields = sample_verify(_sample(_think(r"\boxed{0.5}", thought="One over two is a half.")))
    assert fields["flag_no_reflection"] is True
    assert fields["checks"]["reflection_count"] == 0


def test_an_answer_cut_at_max_tokens_is_truncated():
    fields = sample_verify(_sample("<think>Half of one. Wait, let me", finish_reason="length",
                                   status="failed"))  # fmt: skip
    assert fields["flag_truncated"] is True
    assert fields["flag_format"] is True
    assert fields["verdict"] == "unverified"


@pytest.mark.parametrize(
    ("answer", "normalized"),
    [
        (r" $\dfrac{1}{2}$ ", r"\frac{1}{2}"),
        (r"\left( 1, 2 \right).", "(1,2)"),
        (r"\text{no solution}", "no solution"),
        (r"3\,000\!", "3000"),
        (r"\text{(B)}.", "(B)"),
        (r"\text{A} \text{ or } \text{B}", r"\text{A}\text{or}\text{B}"),
        (r"x \rightarrow 1", r"x\rightarrow 1"),
    ],
)
def test_answers_are_normalized_for_the_majority(answer, normalized):
    assert answer_normalized(answer) == normalized


def _samples(campaign, problem, answers: list[tuple[str, str, int]]):
    for index, (answer, verdict, tokens) in enumerate(answers):
        SampleFactory(campaign=campaign, problem=problem, sample_index=index, answer=answer,
                      verdict=verdict, completion_tokens=tokens)  # fmt: skip


def test_difficulty_counts_pass_rate_token_means_and_majority():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, [
        ("5", "correct", 1000), ("$5$", "correct", 2000), ("7", "incorrect", 3000),
        ("7.", "incorrect", 5000), ("\\text{7}", "incorrect", 4000), ("", "unverified", 8000),
    ])  # fmt: skip
    # Neither an unfinished sample nor a cancelled one counts.
    SampleFactory(campaign=campaign, problem=problem, sample_index=20, status="running",
                  verdict="pending")  # fmt: skip
    SampleFactory(campaign=campaign, problem=problem, sample_index=21, status="cancelled")
    # Nor another campaign's sample of the problem.
    SampleFactory(problem=problem, answer="7", verdict="incorrect")

    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.samples, difficulty.verified, difficulty.correct) == (6, 5, 2)
    assert difficulty.pass_rate == pytest.approx(0.4)
    assert difficulty.mean_tokens_correct == pytest.approx(1500)
    assert difficulty.mean_tokens_incorrect == pytest.approx(4000)
    assert (difficulty.majority_answer, difficulty.majority_count) == ("7", 3)
    assert difficulty.reference_disputed is False  # 5 verified, under 8
    assert ProblemDifficulty.objects.get(problem=problem, campaign=campaign) == difficulty


def test_difficulty_without_a_verified_sample_has_no_pass_rate():
    campaign, problem = CampaignFactory(), ProblemFactory()
    _samples(campaign, problem, [("", "unverified", 100)])
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.samples, difficulty.verified, difficulty.pass_rate) == (1, 0, None)
    assert (difficulty.majority_answer, difficulty.majority_count) == ("", 0)
    assert difficulty.mean_tokens_correct is None


def test_a_tie_for_the_majority_is_broken_the_same_way_every_time():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, [("7", "incorrect", 1), ("5", "correct", 1)])
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.majority_answer, difficulty.majority_count) == ("5", 1)


def _wrong_majority(total: int, wrong: int) -> list[tuple[str, str, int]]:
    return [("7", "incorrect", 100)] * wrong + [("5", "correct", 100)] * (total - wrong)


def test_a_wrong_majority_of_eight_samples_disputes_the_reference():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, _wrong_majority(8, 6))
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.majority_answer, difficulty.majority_count) == ("7", 6)
    assert difficulty.reference_disputed is True


def test_seven_samples_are_too_few_to_dispute():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, _wrong_majority(7, 6))
    assert not difficulty_recompute(
        problem_id=problem.pk, campaign_id=campaign.pk
    ).reference_disputed


def test_a_wrong_answer_under_the_majority_share_is_no_dispute():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, _wrong_majority(10, 5) + [("9", "incorrect", 1)] * 2)
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert difficulty.majority_answer == "5"  # 5 of 12 would not do either
    assert difficulty.reference_disputed is False


def test_a_correct_majority_is_no_dispute():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, _wrong_majority(10, 2))
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.majority_answer, difficulty.reference_disputed) == ("5", False)


def test_a_majority_in_another_form_of_a_correct_answer_is_no_dispute():
    # math-verify found "0.5" right; "1/2" written so by most samples is the same answer.
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="1/2")
    _samples(campaign, problem, [("\\dfrac{1}{2}", "correct", 1)] * 7 + [("0.5", "correct", 1)])
    assert not difficulty_recompute(
        problem_id=problem.pk, campaign_id=campaign.pk
    ).reference_disputed


def test_the_dispute_thresholds_come_from_settings(settings):
    settings.ROLLOUT_DISPUTE_MIN_SAMPLES = 4
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    _samples(campaign, problem, _wrong_majority(5, 4))
    assert difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk).reference_disputed


def test_a_reviewers_dispute_check_stays_until_the_majority_changes():
    campaign, problem = CampaignFactory(), ProblemFactory(reference_answer="5")
    reviewer, checked_at = UserFactory(), timezone.now()
    DifficultyFactory(problem=problem, campaign=campaign, majority_answer="7",
                      dispute_checked_by=reviewer, dispute_checked_at=checked_at)  # fmt: skip
    _samples(campaign, problem, _wrong_majority(8, 6))
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert (difficulty.dispute_checked_by, difficulty.dispute_checked_at) == (reviewer, checked_at)
    assert difficulty.samples == 8  # the row was updated, not a second one made

    for index in range(8, 16):
        SampleFactory(campaign=campaign, problem=problem, sample_index=index, answer="9",
                      verdict="incorrect")  # fmt: skip
    difficulty = difficulty_recompute(problem_id=problem.pk, campaign_id=campaign.pk)
    assert difficulty.majority_answer == "9"
    assert (difficulty.dispute_checked_by, difficulty.dispute_checked_at) == (None, None)
    assert ProblemDifficulty.objects.filter(problem=problem, campaign=campaign).count() == 1
