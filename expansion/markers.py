"""Reflection markers: the list per language, how they are counted, and where they stand.

The checks count the list of the thought's language in every thought, the review page
highlights them, and the analytics count any list of phrases (their own, which admins
extend) with the same matching rule: case-insensitive whole words, a space in a phrase
matching any run of whitespace. Chinese has no spaces between words, so a phrase written in
Chinese characters counts where a clause starts (after punctuation, a space, a formula or
the start of the text) and runs on into the clause: "等等，" and "，所以我们" count, while
the 不对 of 是不对称的 and the 所以 of 之所以 do not.
"""

import re
from collections.abc import Iterable
from functools import lru_cache

from annotator.rendering import MATH

from .language import HAN_CHAR

# The reflection markers the o1 replication report counts, per language of the trace.
MARKERS: dict[str, tuple[str, ...]] = {
    "en": (
        "wait", "alternatively", "hmm", "let me check", "let me verify", "let me double-check",
        "on second thought", "however", "actually",
    ),
    # The same turns in Chinese. 所以 and 因此 (so, therefore) conclude rather than reflect,
    # as "so" and "therefore" are not English markers: the analytics count them apart.
    "zh": (
        "等等", "不对", "或者", "嗯", "让我检查", "让我验证", "再想想", "换个思路", "另一种方法",
        "但是", "其实",
    ),
}  # fmt: skip
DEFAULT_LANGUAGE = "en"


def markers_for(language: str = DEFAULT_LANGUAGE) -> tuple[str, ...]:
    """The reflection markers of a language; a language without its own list uses English."""
    return MARKERS.get(language, MARKERS[DEFAULT_LANGUAGE])


@lru_cache(maxsize=256)
def marker_pattern(phrase: str) -> re.Pattern:
    """A phrase as a whole-word, case-insensitive pattern; its spaces match any whitespace.

    A phrase that ends in a Chinese character need not end a word: Chinese runs on.
    """
    words = r"\s+".join(re.escape(word) for word in phrase.split())
    end = "" if HAN_CHAR.match(phrase[-1:]) else r"(?!\w)"
    return re.compile(rf"{_BEFORE}{words}{end}", re.IGNORECASE)


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
    phrases = tuple(markers_for(language) if markers is None else markers)
    counts = dict.fromkeys(phrases, 0)
    # One pass over the text for all of them (they cannot overlap but for one inside a
    # longer one, which the longest-first pattern counts once, as a reader would).
    by_key = {_key(phrase): phrase for phrase in phrases}
    for match in _marker_matches(text, phrases):
        phrase = by_key.get(_key(match.group(0)))
        if phrase is not None:
            counts[phrase] += 1
    return counts


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@lru_cache(maxsize=16)
def _any_marker(phrases: tuple[str, ...]) -> re.Pattern:
    # Longest first, so that "let me double-check" is one mark rather than a part of one.
    # The "no letter before" test is left to _marker_matches: a pattern that starts with a
    # lookbehind is tried at every position of the text, one that starts with a letter only
    # where that letter is (about three times faster on a long thought).
    ordered = sorted(phrases, key=len, reverse=True)
    return re.compile(
        "|".join(marker_pattern(phrase).pattern.removeprefix(_BEFORE) for phrase in ordered), re.I
    )


_BEFORE = r"(?<!\w)"
_WORD_CHAR = re.compile(r"\w")


def _marker_matches(text: str, phrases: tuple[str, ...]):
    """The whole-word matches, longest first and without overlap. A match that begins
    inside a word is passed over, but one may still begin within it ("xa b a" holds no
    "a b a", its "a b a" from the second letter on is one)."""
    pattern, position = _any_marker(phrases), 0
    while match := pattern.search(text, position):
        start, end = match.span()
        if start and _WORD_CHAR.match(text, start - 1):
            position = start + 1
            continue
        yield match
        position = max(end, start + 1)


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
        for match in _marker_matches(text, phrases)
        if not any(start < match.end() and match.start() < end for start, end in math)
    ]
