"""The simulated endpoint's trace reads as a solver's journey through the record it is sent."""

import re

import pytest

from devtools.simulated_text import build_trace, word_count
from expansion.models import PromptVersion
from expansion.prompts import DEFAULT_PROMPT, build_messages

RECORD = {
    "steps": [
        {
            "kind": "attempt",
            "text": "Try $x = 3$, since $3 + 3$ looks close to 8",
            "notes": ["Adding a number to itself doubles it"],
        },
        {"kind": "reflection", "text": "But $3 + 3 = 6$, which falls short of 8", "notes": []},
        {
            "kind": "correction",
            "text": "Halve instead: $x = 8 / 2 = 4$",
            "notes": ["Halving undoes doubling"],
        },
        {"kind": "verification", "text": "Check: $4 + 4 = 8$ holds", "notes": []},
    ],
    "final_answer": "4",
}
STATEMENT = "Find $x$ such that $x + x = 8$."
# What gives away that the text was written from someone's record, not thought up.
LEAKS = re.compile(
    r"\bsteps? \d+|\brecord\b|\bnotes?\b|common sense used here|according to|\bannotat|"
    r"\bhint\b|reference solution",
    re.IGNORECASE,
)


def messages():
    prompt = PromptVersion(version=1, **DEFAULT_PROMPT)
    return build_messages(prompt, problem_statement=STATEMENT, record=RECORD)


@pytest.mark.parametrize("target", [300, 1500])
def test_the_trace_walks_the_record_in_order_and_says_its_facts(target):
    content, thought = build_trace(messages(), [0, None], target)
    texts = [step["text"] for step in RECORD["steps"]]
    where = [thought.find(text) for text in texts]
    assert -1 not in where and where == sorted(where), where
    for step in RECORD["steps"]:
        for note in step["notes"]:
            assert note in thought
    # The reflection is voiced as one, where the record has it.
    reflection = thought.find(texts[1])
    assert thought.rfind("Wait", 0, reflection) > thought.find(texts[0])
    assert content.startswith("<|begin_of_thought|>\n\n")
    assert content.endswith("\\boxed{4}\n\n<|end_of_solution|>")
    assert "<|end_of_thought|>\n\n<|begin_of_solution|>" in content
    assert word_count(content) == target


def test_the_trace_never_refers_to_the_record():
    for sample in range(5):
        content, _ = build_trace(messages(), [sample, None], 1500)
        assert LEAKS.search(content) is None, LEAKS.search(content)


def test_the_trace_is_paragraphs_of_whole_sentences():
    _, thought = build_trace(messages(), [0, None], 1500)
    paragraphs = thought.split("\n\n")
    assert len(paragraphs) > 10
    for paragraph in paragraphs:
        assert paragraph.strip() == paragraph and paragraph[-1] in ".?!", paragraph
    # Pauses take stock of what is known so far, in the solver's words.
    assert any(p.startswith(("Let me pause", "Okay, let me sum up")) for p in paragraphs)


def test_samples_differ_and_each_is_reproducible():
    first, _ = build_trace(messages(), [0, None], 600)
    again, _ = build_trace(messages(), [0, None], 600)
    other, _ = build_trace(messages(), [1, None], 600)
    assert first == again
    assert other != first
    assert word_count(other) == word_count(first) == 600
