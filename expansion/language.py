"""Languages of records and traces: which script a text is written in, and its key words.

Chinese has no spaces between words, so a text's words are taken per script: Latin words of
three letters or more, numbers and LaTeX commands as before, and for each run of Chinese
characters its character bigrams (the usual segmenter-free stand-in for words), leaving out
bigrams with a function character (的, 了, 是 ...) and the commonest connectives. A text's
language is told by its script: more Chinese characters than Latin words is Chinese (``zh``),
any Latin word otherwise is English (``en``; the marker lists and leakage phrases are the
English ones), neither (only formulas and numbers) is unknown (``""``).
"""

import re

from annotator.rendering import MATH

# The CJK Unified Ideographs, their extension A and the compatibility block.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN_RUN = re.compile(f"[{HAN}]+")
HAN_CHAR = re.compile(f"[{HAN}]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}|\d+(?:\.\d+)?|\\[A-Za-z]+")
# Words of a text in any language, for scripts with spaces: what language detection counts.
_LATIN_LETTERS = re.compile(r"(?<!\\)\b[A-Za-z]{2,}\b")

STOPWORDS = set(
    """the a an and or of to in on for is are be this that it we so then with as at by from
    not but if let try get gives give which what when there their its into have has was
    were will would can could should must our us you your than also""".split()  # noqa: SIM905
)
# A bigram with one of these is grammar, not content; the bigrams after them are connectives
# and pronouns that every Chinese text has.
_FUNCTION_CHARS = set("的了是在和就也都而及与着或吗呢吧啊把被这那个么")
_ZH_STOPWORDS = set(
    "我们 你们 他们 所以 因为 然后 如果 可以 就是 那么 因此 但是 现在 已经 还是 应该 一下 "  # noqa: SIM905
    "看看 一个 一些 没有 这样 那样 怎么 什么 需要 得到 等于".split()
)

ZH, EN, UNKNOWN = "zh", "en", ""
# A paragraph with fewer units (Chinese characters plus Latin words) has no language of its
# own for the mixing check: a formula with "let" in it, a one-word aside.
MIN_UNITS = 12


def without_math(text: str) -> str:
    """The text with its formulas blanked: ``$x^2$`` says nothing about the language."""
    return MATH.sub(" ", text)


def key_words(text: str) -> set[str]:
    """The words of a text that say what it is about: a step's, a paragraph's, a thought's."""
    words = {w.lower() for w in LATIN_WORD.findall(text) if w.lower() not in STOPWORDS}
    grammar, common = _FUNCTION_CHARS, _ZH_STOPWORDS
    for run in HAN_RUN.findall(text):
        words.update(
            a + b for a, b in zip(run, run[1:], strict=False)
            if a not in grammar and b not in grammar and a + b not in common
        )  # fmt: skip
    return words


def neutral_words(words: set[str]) -> set[str]:
    """The key words that read the same in every language: numbers and LaTeX commands."""
    return {w for w in words if w[0].isdigit() or w[0] == "\\"}


def units(text: str) -> tuple[int, int]:
    """(Chinese characters, Latin words) of a text, formulas left out."""
    prose = without_math(text)
    return len(HAN_CHAR.findall(prose)), len(_LATIN_LETTERS.findall(prose))


def language_of(text: str, *, min_units: int = 1) -> str:
    """``zh``, ``en``, or ``""`` when the text has fewer than ``min_units`` to tell by."""
    han, latin = units(text)
    if han + latin < min_units:
        return UNKNOWN
    return ZH if han > latin else EN
