"""Checks stored with a trace: step-to-paragraph links."""

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


def test_the_links_of_steps_to_paragraphs_are_stored_with_the_checks():
    thought = (
        "Hmm, where to start.\n\nFactor the quadratic polynomial into linear factors.\n\n"
        "By Vieta the roots are summing to seven; wait, five."
    )
    links = _checks(thought)["step_links"]
    assert [(link["step"], link["paragraph"], link["missed"]) for link in links] == [
        (1, 2, False), (2, 3, False), (3, None, True),
    ]  # fmt: skip
