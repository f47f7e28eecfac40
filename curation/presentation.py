"""How a trace is shown to a reviewer: paragraphs, highlighted markers, step links, diffs."""

import difflib
import hashlib
import re

from django.core.cache import cache
from django.utils.safestring import mark_safe

from annotator.rendering import render_markdown
from expansion.checks import step_links as step_links_compute
from expansion.markers import DEFAULT_LANGUAGE, marker_spans, markers_for
from expansion.models import Trace
from expansion.parsing import thought_paragraphs

TAG = re.compile(r"(<[^>]+>)")
UNLINKED = {"paragraph": None, "score": 0.0, "missed": True}


def _mark(text: str, language: str) -> str:
    marked, last = [], 0
    for start, end in marker_spans(text, language=language):
        marked += [text[last:start], "<mark>", text[start:end], "</mark>"]
        last = end
    return "".join(marked) + text[last:]


def highlight_markers(html: str, language: str = DEFAULT_LANGUAGE) -> str:
    """Wrap reflection markers in <mark>, touching text only, never tags, attributes or math.

    The math of rendered Markdown is still its source (KaTeX renders it in the browser), so
    the markers module, which leaves math alone, finds the same formulas here.
    """
    return "".join(
        part if part.startswith("<") else _mark(part, language) for part in TAG.split(html)
    )


def render_paragraph(text: str, language: str = DEFAULT_LANGUAGE) -> str:
    """One paragraph (or step) sanitized, with the markers of its language highlighted."""
    return mark_safe(highlight_markers(render_markdown(text), language))  # noqa: S308


# Bump when rendering or highlighting changes in a way the markers' list does not show: the
# cached HTML of every step is then rendered again.
RENDERED_VERSION = 1
CACHE_SECONDS = 7 * 24 * 3600


def _rendered_key(text: str, language: str) -> str:
    markers = "\x1f".join(markers_for(language))
    digest = hashlib.sha256(f"{RENDERED_VERSION}\x1e{language}\x1e{markers}\x1e{text}".encode())
    return f"step-html:{digest.hexdigest()}"


def render_paragraphs(texts: list[str], language: str = DEFAULT_LANGUAGE) -> list[str]:
    """``render_paragraph`` of each text, from the cache where it was rendered before (one
    round trip for all), so that a long trace's page does not render its Markdown again on
    every visit. The key is the text, its language's markers and ``RENDERED_VERSION``."""
    keys = [_rendered_key(text, language) for text in texts]
    cached = cache.get_many(keys)
    missing = {}
    rendered = []
    for key, text in zip(keys, texts, strict=True):
        html = cached.get(key)
        if html is None:
            html = missing[key] = str(render_paragraph(text, language))
        rendered.append(mark_safe(html))  # noqa: S308 - sanitized by render_markdown
    if missing:
        cache.set_many(missing, CACHE_SECONDS)
    return rendered


def render_thought(thought: str, language: str = DEFAULT_LANGUAGE) -> list[dict]:
    """Each paragraph sanitized, with the markers of the thought's language highlighted,
    ready to carry an anchor."""
    paragraphs = thought_paragraphs(thought)
    return [
        {"number": n, "html": html}
        for n, html in enumerate(render_paragraphs(paragraphs, language), start=1)
    ]


def step_links(trace: Trace, thought: str) -> list[dict]:
    """Each annotated step with the paragraph of the shown thought that carries it.

    The checks store the links of the trace's thought; they are computed here only for a
    trace checked before the checks stored them, or for a thought a reviewer has edited
    (its paragraphs are not those the checks saw).
    """
    steps = trace.record["steps"]
    links = trace.checks.get("step_links")
    if links is None or thought != trace.thought:
        across = trace.checks.get("coverage_basis") == "neutral"
        links = step_links_compute(steps, thought, trace.checks.get("coverage", []), across=across)
    by_step = {link["step"]: link for link in links}
    return [
        {**by_step.get(number, UNLINKED), "number": number, "step": step}
        for number, step in enumerate(steps, start=1)
    ]


def text_diff(before: str, after: str) -> str:
    """A side-by-side diff table; difflib escapes the text it puts in the table."""
    table = difflib.HtmlDiff(wrapcolumn=70).make_table(
        before.splitlines(), after.splitlines(), "Before", "After", context=True, numlines=2
    )
    return mark_safe(table)  # noqa: S308
