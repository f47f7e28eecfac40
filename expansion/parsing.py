"""Splitting a model's answer into thought and solution (and paragraphs); its boxed answer."""

import re

from .prompts import SOLUTION_CLOSE, SOLUTION_OPEN, THOUGHT_CLOSE, THOUGHT_OPEN

STILL = re.compile(
    re.escape(THOUGHT_OPEN) + r"(?P<thought>.*?)" + re.escape(THOUGHT_CLOSE) + r"\s*"
    + re.escape(SOLUTION_OPEN) + r"(?P<solution>.*?)(?:" + re.escape(SOLUTION_CLOSE) + r"|\Z)",
    re.DOTALL,
)  # fmt: skip
THINK_TAGS = re.compile(r"<think>(?P<thought>.*?)</think>\s*(?P<solution>.*)", re.DOTALL)
# The thought formats a solve prompt asks for (SolvePrompt.thought_format), by name.
THOUGHT_FORMATS = {"still": STILL, "think": THINK_TAGS}
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def split_thought(
    content: str, reasoning: str = "", *, thought_format: str | None = None
) -> tuple[str, str] | None:
    """(thought, solution), or None when the answer has no structure we can split.

    A provider that returns its reasoning separately gives the thought directly; otherwise
    the STILL markers the prompt asks for, or <think> tags, separate the two.
    ``thought_format`` ("still" or "think") accepts that format alone.
    """
    patterns = (THOUGHT_FORMATS[thought_format],) if thought_format else (STILL, THINK_TAGS)
    for pattern in patterns:
        match = pattern.search(content)
        if match and match.group("thought").strip() and match.group("solution").strip():
            return match.group("thought").strip(), match.group("solution").strip()
    if reasoning.strip() and content.strip():
        return reasoning.strip(), content.strip()
    return None


def thought_paragraphs(thought: str) -> list[str]:
    """The paragraphs of a thought, numbered from 1 by the checks and the review page alike."""
    return [p for p in PARAGRAPH_BREAK.split(thought) if p.strip()]


def paragraph_spans(thought: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph of ``thought_paragraphs``, its outer whitespace left
    out: ``thought[start:end]`` is the paragraph's text, numbered the same way."""
    spans, last = [], 0
    for brk in [*PARAGRAPH_BREAK.finditer(thought), None]:
        stop = brk.start() if brk else len(thought)
        piece = thought[last:stop]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            spans.append((last + lead, last + len(piece.rstrip())))
        last = brk.end() if brk else stop
    return spans


def last_boxed(text: str) -> str | None:
    """The contents of the last \\boxed{...} (or \\fbox{...}), braces balanced."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for position in range(brace, len(text)):
        if text[position] == "{":
            depth += 1
        elif text[position] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : position].strip()
    return None
