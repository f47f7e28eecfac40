"""Loops: the same stretch of words, or the same line, written over and over.

Long-thought models fall into loops that a reader sees at once and a token count does not:
the same sentence, or the same few sentences, again and again. Two measures, as the open
reasoning-data projects filter them (AM-Thinking's repeated 20-token n-grams):

- an n-gram of ``n`` tokens (default 20) that occurs more than ``ngram_max`` times;
- a line (of at least LINE_MIN_TOKENS tokens, spacing and case aside) that occurs more than
  ``line_max`` times.

Tokens here are words, numbers, single Chinese characters and single symbols, so a loop of
formulas counts as well as one of prose. Each finding says what repeats, how often, and
where: the character offsets of its occurrences in the thought (the first MAX_POSITIONS of
them) and the paragraphs they fall in, numbered as the review page numbers them.
"""

import re
from bisect import bisect_right
from collections import Counter

from .language import HAN
from .parsing import PARAGRAPH_BREAK

TOKEN = re.compile(rf"[{HAN}]|[^\W_]+")
LINE_MIN_TOKENS = 5  # "Wait." or "$$" on a line of its own repeats without being a loop
MAX_POSITIONS = 50
EXCERPT = 200  # characters of the repeated text kept


def paragraph_starts(text: str) -> list[int]:
    """The offset where each paragraph starts, numbered from 1 as thought_paragraphs does."""
    starts, position = [], 0
    for gap in [*PARAGRAPH_BREAK.finditer(text), None]:
        end = gap.start() if gap else len(text)
        if text[position:end].strip():
            starts.append(position)
        position = gap.end() if gap else end
    return starts


def _paragraphs(starts: list[int], offsets: list[int]) -> list[int]:
    return sorted({max(1, bisect_right(starts, offset)) for offset in offsets})


def _finding(kind: str, text: str, count: int, offsets: list[int], starts: list[int]) -> dict:
    return {
        "kind": kind,
        "text": text[:EXCERPT],
        "count": count,
        "positions": offsets[:MAX_POSITIONS],
        "paragraphs": _paragraphs(starts, offsets),
    }


def ngram_repeated(text: str, *, n: int, most: int, starts: list[int]) -> dict | None:
    """The n-gram that occurs most often, when that is more than ``most`` times."""
    tokens = TOKEN.findall(text.lower())
    if len(tokens) < n + most:  # too short to hold that many, even overlapping
        return None
    # Each distinct token as one character, so that a window of n tokens is a slice of a
    # string: slicing and hashing strings runs in C, where tuples of n words would not.
    code = {token: chr(0x100 + i) for i, token in enumerate(dict.fromkeys(tokens))}
    coded = "".join(map(code.__getitem__, tokens))
    windows = [coded[i : i + n] for i in range(len(coded) - n + 1)]
    gram, count = Counter(windows).most_common(1)[0]
    if count <= most:
        return None
    first = [i for i, window in enumerate(windows) if window == gram]
    matches = list(TOKEN.finditer(text))  # where the tokens are, only for a loop found
    start, end = matches[first[0]].start(), matches[first[0] + n - 1].end()
    offsets = [matches[i].start() for i in first]
    return _finding("ngram", text[start:end], len(first), offsets, starts)


def line_repeated(text: str, *, most: int, starts: list[int]) -> dict | None:
    """The line that occurs most often, when that is more than ``most`` times."""
    seen: dict[str, list[int]] = {}
    offset = 0
    for line in text.splitlines(keepends=True):
        key = " ".join(line.split()).lower()
        if key:
            seen.setdefault(key, []).append(offset + len(line) - len(line.lstrip()))
        offset += len(line)
    # Only the lines that come back often enough are measured: most lines occur once.
    often = [(key, offsets) for key, offsets in seen.items()
             if len(offsets) > most and len(TOKEN.findall(key)) >= LINE_MIN_TOKENS]  # fmt: skip
    if not often:
        return None
    key, offsets = max(often, key=lambda item: len(item[1]))
    return _finding("line", key, len(offsets), offsets, starts)


def repetitions(text: str, *, n: int, ngram_max: int, line_max: int) -> list[dict]:
    """The loops of a text (an n-gram one, a line one, either or none)."""
    starts = paragraph_starts(text)
    found = (ngram_repeated(text, n=n, most=ngram_max, starts=starts),
             line_repeated(text, most=line_max, starts=starts))  # fmt: skip
    return [finding for finding in found if finding]
