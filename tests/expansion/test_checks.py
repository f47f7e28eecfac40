"""Checks stored with a trace: leakage of the record's structure, step-to-paragraph links."""

import pytest

from expansion.checks import trace_checks

STEPS = [
    {"kind": "attempt", "text": "Factor the quadratic polynomial into linear factors", "notes": []},
    {"kind": "correction", "text": "Vieta relations give roots summing seven", "notes": []},
    {"kind": "conclusion", "text": "Unrelated zebra giraffe", "notes": []},
]


def _checks(thought: str, solution: str = r"\boxed{4}") -> dict:
    return trace_checks(
        thought=thought, solution=solution, split_ok=True, finish_reason="stop",
        completion_tokens=1500, target_min=1500, reference_answer="4", annotator_answer="4",
        steps=STEPS,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Looking at step 1: factor x^2-5x+6 ... Hmm, let me check.", "looking at step 1"),
        ("Here step 3 says the roots are 2 and 3.", "step 3 says"),
        ("Step two states that x is even.", "step two states"),
        ("According to step 2, x = 4.", "according to step 2"),
        ("According to the record, x = 4.", "according to the record"),
        ("The record says x is 4.", "the record"),
        ("As noted in the record, the sum is 5.", "as noted in the record"),
        ("The answer in the annotation is 4.", "the annotation"),
        ("Two annotators agree.", "annotators"),
    ],
)  # fmt: skip
def test_phrases_naming_the_records_structure_are_leakage(text, leak):
    assert _checks(f"Let me think.\n\n{text}")["leakage"] == [leak]


@pytest.mark.parametrize(
    "text",
    [
        "Step 1: compute x. Step 2: check it.",
        "From step 2 we know x = 4, and in step 3 I factor it.",
        "The previous step says nothing new; the next step is to check.",
        "Let me record that: the recorded value is 4.",
        "Looking at steps like these, a pattern appears.",
    ],
)
def test_a_solvers_own_steps_and_words_are_not_leakage(text):
    assert _checks(text)["leakage"] == []


def test_the_links_of_steps_to_paragraphs_are_stored_with_the_checks():
    thought = (
        "Hmm, where to start.\n\nFactor the quadratic polynomial into linear factors.\n\n"
        "By Vieta the roots are summing to seven; wait, five."
    )
    links = _checks(thought)["step_links"]
    assert [(link["step"], link["paragraph"], link["missed"]) for link in links] == [
        (1, 2, False), (2, 3, False), (3, None, True),
    ]  # fmt: skip
