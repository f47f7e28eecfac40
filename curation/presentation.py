"""How a trace is shown to a reviewer: paragraphs, highlighted markers, step links, diffs."""

import difflib
import re

from django.utils.safestring import mark_safe

from annotator.rendering import render_markdown
from expansion.checks import REFLECTION_MARKERS, _key_words

MARKER = re.compile(r"\b(" + "|".join(re.escape(m) for m in REFLECTION_MARKERS) + r")\b", re.I)
TAG = re.compile(r"(<[^>]+>)")


def highlight_markers(html: str) -> str:
    """Wrap reflection markers in <mark>, touching text only, never tags or attributes."""
    parts = TAG.split(html)
    return "".join(
        part if part.startswith("<") else MARKER.sub(r"<mark>\1</mark>", part) for part in parts
    )


def thought_paragraphs(thought: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", thought) if p.strip()]


def render_thought(thought: str) -> list[dict]:
    """Each paragraph sanitized, with markers highlighted, ready to carry an anchor."""
    return [
        {"number": n, "html": mark_safe(highlight_markers(render_markdown(text)))}  # noqa: S308
        for n, text in enumerate(thought_paragraphs(thought), start=1)
    ]


def step_links(steps: list[dict], thought: str, coverage: list[dict]) -> list[dict]:
    """For each annotated step, the paragraph of the thought that carries it best."""
    paragraphs = [_key_words(p) for p in thought_paragraphs(thought)]
    scores = {item["step"]: item["score"] for item in coverage}
    links = []
    for number, step in enumerate(steps, start=1):
        words = _key_words(step["text"])
        best, best_overlap = None, 0
        for index, present in enumerate(paragraphs, start=1):
            overlap = len(words & present)
            if overlap > best_overlap:
                best, best_overlap = index, overlap
        score = scores.get(number, 0.0)
        links.append({"number": number, "step": step, "paragraph": best, "score": score,
                      "missed": score < 0.5})  # fmt: skip
    return links


def text_diff(before: str, after: str) -> str:
    """A side-by-side diff table; difflib escapes the text it puts in the table."""
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        before.splitlines(), after.splitlines(), "Before", "After", context=True, numlines=2
    )
    return mark_safe(table)  # noqa: S308
