"""Reflection markers: the list per language, how they are counted, and where they stand.

The checks count them in every thought, the review page highlights them, and the analytics
count any list of phrases (their own, which admins extend) with the same matching rule:
case-insensitive whole words, a space in a phrase matching any run of whitespace.
"""

import re
from collections.abc import Iterable
from functools import lru_cache

from annotator.rendering import MATH

# The reflection markers the o1 replication report counts, per language of the trace.
MARKERS: dict[str, tuple[str, ...]] = {
    "en": (
        "wait", "alternatively", "hmm", "let me check", "let me verify", "let me double-check",
        "on second thought", "however", "actually",
    ),
}  # fmt: skip
DEFAULT_LANGUAGE = "en"


def markers_for(language: str = DEFAULT_LANGUAGE) -> tuple[str, ...]:
    """The reflection markers of a language; a language without its own list uses English."""
    return MARKERS.get(language, MARKERS[DEFAULT_LANGUAGE])


@lru_cache(maxsize=256)
def marker_pattern(phrase: str) -> re.Pattern:
    """A phrase as a whole-word, case-insensitive pattern; its spaces match any whitespace."""
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=256)
def _counted(phrase: str) -> re.Pattern:
    # marker_pattern without its leading lookbehind, which keeps the regex engine from
    # skipping ahead to the phrase's first letters: counting is several times faster with the
    # word boundary before a match checked by hand (every trace is counted twice).
    return re.compile(marker_pattern(phrase).pattern.removeprefix(r"(?<!\w)"), re.IGNORECASE)


_WORD = re.compile(r"\w")


def marker_count(text: str, phrase: str) -> int:
    """Whole-word, case-insensitive occurrences of ``phrase``, as ``marker_pattern`` finds
    them (not overlapping)."""
    pattern, count, position = _counted(phrase), 0, 0
    while match := pattern.search(text, position):
        start, end = match.span()
        if start and _WORD.match(text, start - 1):
            position = start + 1  # inside a word: a match may still begin further on
            continue
        count += 1
        position = max(end, start + 1)
    return count


def marker_counts(
    text: str, markers: Iterable[str] | None = None, *, language: str = DEFAULT_LANGUAGE
) -> dict[str, int]:
    """Occurrences of each marker (the language's list unless given), zeros included."""
    phrases = markers_for(language) if markers is None else markers
    return {phrase: marker_count(text, phrase) for phrase in phrases}


@lru_cache(maxsize=16)
def _any_marker(phrases: tuple[str, ...]) -> re.Pattern:
    # Longest first, so that "let me double-check" is one mark rather than a part of one.
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile("|".join(marker_pattern(phrase).pattern for phrase in ordered), re.I)


def marker_spans(
    text: str, markers: Iterable[str] | None = None, *, language: str = DEFAULT_LANGUAGE
) -> list[tuple[int, int]]:
    """(start, end) of every marker outside math, in order and without overlap.

    Inside `$...$`, `$$...$$`, `\\(...\\)` or `\\[...\\]` a marker is left alone: a mark
    there would cut the formula in two and KaTeX could no longer render it.
    """
    phrases = tuple(markers_for(language) if markers is None else markers)
    if not phrases:
        return []
    math = [match.span() for match in MATH.finditer(text)]
    return [
        match.span()
        for match in _any_marker(phrases).finditer(text)
        if not any(start < match.end() and match.start() < end for start, end in math)
    ]
