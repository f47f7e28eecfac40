"""The text of the simulated endpoint's answers: a journey-learning trace built from the request."""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

_FINAL_RE = re.compile(r"^\s*final answer\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STEP_RE = re.compile(r"^\s*step\s*\d+\b[^:]*:\s*(.*)$", re.IGNORECASE)
_MARKERS = ("Hmm,", "Wait,", "Let me check:", "Alternatively,", "Therefore,")
_OPENERS = (*_MARKERS, "So", "Now", "Next,", "Then")
# Filler vocabulary for the reflective sentences that pad the thought to length.
_SUBJECTS = ("the previous step", "this expression", "the constraint", "the boundary case")
_OBJECTS = ("the intermediate result", "the substitution", "each sign", "the running count")
_VERBS = ("does not quite match", "needs another look at", "simplifies with", "is consistent with")
_TAILS = ("before moving on.", "so I will recompute it.", "and that seems right.", "term by term.")


def word_count(text: str | None) -> int:
    return len(text.split()) if text else 0


def message_text(message: Any) -> str:
    """Content as text; the SDK may send a list of typed parts instead of a string."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def word_pieces(text: str) -> list[str]:
    """Word-sized pieces (word + trailing whitespace); they concatenate back to `text`."""
    lead = text[: len(text) - len(text.lstrip())]
    return ([lead] if lead else []) + re.findall(r"\S+\s*", text)


def _step_snippets(text: str, n_words: int = 8) -> list[str]:
    """A few words of every "Step k (...):" line, so coverage checks downstream can match."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    steps = [m.group(1) for line in lines if (m := _STEP_RE.match(line)) and m.group(1).strip()]
    if not steps:  # No labelled steps: any non-answer line will do, bounded to stay concise.
        steps = [line for line in lines if not _FINAL_RE.match(line)][:12]
    return [" ".join(step.split()[:n_words]) for step in steps]


def build_trace(messages: list[Any], sample: Any, target_tokens: int) -> tuple[str, str]:
    """Return (content, thought): a deterministic journey-learning trace for the request."""
    key = json.dumps([messages, sample], sort_keys=True, default=str).encode()
    rng = random.Random(hashlib.sha256(key).digest())  # noqa: S311 - reproducible text only
    user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    answer = (_FINAL_RE.findall(user) or ["0"])[-1]
    paragraphs = ["Let me work through this problem carefully, one step at a time."]
    for k, snippet in enumerate(_step_snippets(user), 1):
        paragraphs.append(f"Looking at step {k}: {snippet} ... Hmm, let me check that first.")
    solution = (
        "After weighing the attempts above, the consistent line of reasoning is clear."
        f"\n\nThe final answer is \\boxed{{{answer}}}"
    )
    used = sum(map(word_count, paragraphs)) + word_count(solution) + 4  # + the four tags
    sentences: list[str] = []
    while used < target_tokens:  # every marker appears once before random openers take over
        opener = _MARKERS[len(sentences)] if len(sentences) < len(_MARKERS) else None
        words = [opener or rng.choice(_OPENERS)]
        words += [rng.choice(group) for group in (_SUBJECTS, _VERBS, _OBJECTS, _TAILS)]
        sentences.append(" ".join(words))
        used += word_count(sentences[-1])
    if used > target_tokens and sentences:  # trim the last sentence: exactly the target
        last = sentences[-1].split()
        sentences[-1] = " ".join(last[: max(1, len(last) - (used - target_tokens))])
    paragraphs += [" ".join(sentences[i : i + 4]) for i in range(0, len(sentences), 4)]
    thought = "\n\n".join(paragraphs)
    content = (
        f"<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
        f"<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>"
    )
    return content, thought
