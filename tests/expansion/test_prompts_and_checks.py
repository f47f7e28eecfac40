import pytest

from expansion.checks import step_coverage, trace_checks
from expansion.models import PromptVersion
from expansion.parsing import last_boxed, split_thought
from expansion.prompts import build_messages, prompt_active, prompt_version_create

RECORD = {
    "steps": [
        {
            "kind": "attempt",
            "text": "Factor $x^2-5x+6$ with roots summing to 7",
            "notes": ["Vieta"],
        },
        {
            "kind": "correction",
            "text": "Wrong: the roots sum to 5, so they are 2 and 3",
            "notes": [],
        },
    ],
    "final_answer": "2, 3",
}


@pytest.mark.django_db
def test_default_prompt_carries_the_record_components_and_invariants():
    prompt = prompt_active()
    assert prompt.version == 1 and prompt.is_active and len(prompt.content_hash) == 64
    system, user = build_messages(prompt, problem_statement="Solve $x^2-5x+6=0$.", record=RECORD)
    assert system["role"] == "system" and user["role"] == "user"
    for phrase in ("Granularity", "Stepwise pauses", "Explorer's perspective", "Invent nothing",
                   "Never mention an annotator", "1,500 to 3,000 tokens", "<|begin_of_thought|>",
                   "\\boxed{}"):  # fmt: skip
        assert phrase in system["content"], phrase
    assert "Step 2 (correction): Wrong: the roots sum to 5" in user["content"]
    assert "Common sense used here: Vieta" in user["content"]
    assert user["content"].endswith("Final answer: 2, 3")


@pytest.mark.django_db
def test_a_component_left_empty_is_left_out_and_changes_the_hash():
    base = prompt_active()
    fields = {name: getattr(base, name) for name in PromptVersion.CONTENT_FIELDS}
    ablated = prompt_version_create(**{**fields, "explorer_perspective": ""})
    assert ablated.version == 2 and ablated.content_hash != base.content_hash
    system = build_messages(ablated, problem_statement="p", record=RECORD)[0]["content"]
    assert "Explorer's perspective" not in system and "Granularity" in system


STILL_ANSWER = (
    "<|begin_of_thought|>Hmm.<|end_of_thought|>\n\n<|begin_of_solution|>So 4.<|end_of_solution|>"
)


@pytest.mark.parametrize(
    ("content", "reasoning", "expected"),
    [
        (STILL_ANSWER, "", ("Hmm.", "So 4.")),
        ("<think>Let me see.</think>\nThe answer is 4.", "", ("Let me see.", "The answer is 4.")),
        ("The answer is 4.", "Long reasoning.", ("Long reasoning.", "The answer is 4.")),
        ("Just an answer with no structure.", "", None),
    ],
)  # fmt: skip
def test_split_thought(content, reasoning, expected):
    assert split_thought(content, reasoning) == expected


def test_last_boxed_balances_braces():
    assert last_boxed(r"first \boxed{1} then \boxed{\frac{1}{2}} done") == r"\frac{1}{2}"
    assert last_boxed("no box") is None


def test_coverage_flags_the_step_the_thought_lost():
    thought = "Let me factor x^2-5x+6; roots summing to 7? That fails the check."
    coverage = step_coverage(RECORD["steps"], thought)
    assert coverage[0]["score"] >= 0.5 > coverage[1]["score"]


def test_trace_checks_report_answers_markers_leakage_and_length():
    thought = (
        "Wait, the roots sum to 5. Hmm, alternatively check 2 and 3. As the annotator noted, fine."
    )
    checks = trace_checks(
        thought=thought, solution=r"The roots are \boxed{2, 3}.", split_ok=True,
        finish_reason="stop", completion_tokens=500, target_min=1500,
        reference_answer="2, 3", annotator_answer="3, 2", steps=RECORD["steps"],
    )  # fmt: skip
    assert checks["boxed_answer"] == "2, 3"
    assert checks["matches_reference"] is True
    assert checks["too_short"] is True and checks["truncated"] is False
    assert checks["too_long"] is False  # no maximum given
    longer = trace_checks(
        thought=thought, solution=r"\boxed{2, 3}", split_ok=True, finish_reason="stop",
        completion_tokens=3200, target_min=1500, target_max=3000, reference_answer="2, 3",
        annotator_answer="2, 3", steps=RECORD["steps"],
    )  # fmt: skip
    assert longer["too_long"] is True and longer["too_short"] is False
    assert checks["markers"]["wait"] == 1 and checks["markers"]["alternatively"] == 1
    assert checks["reflection_count"] == 3 and checks["reflection_density"] == 6.0
    assert checks["leakage"] == ["annotator"]


def test_an_answer_that_could_not_be_compared_is_unchecked_not_a_mismatch(client_as, reviewer_user):
    from django.urls import reverse

    from expansion.checks import check_flags
    from tests.factories import TraceFactory

    checks = trace_checks(
        thought="Wait, so x is 4.", solution=r"\boxed{4}", split_ok=True, finish_reason="stop",
        completion_tokens=1500, target_min=1500, reference_answer="", annotator_answer="4",
        steps=RECORD["steps"],
    )  # fmt: skip
    assert checks["matches_reference"] is None and checks["matches_annotator"] is True
    assert check_flags(checks)["flag_answer_mismatch"] is False
    assert check_flags({**checks, "matches_reference": False})["flag_answer_mismatch"] is True
    trace = TraceFactory(checks=checks, **check_flags(checks))
    client = client_as(reviewer_user)
    detail = client.get(reverse("trace-detail", args=[trace.pk])).content.decode()
    review = client.get(reverse("review-trace", args=[trace.pk])).content.decode()
    assert "reference: unchecked" in detail and "reference unchecked" in review
