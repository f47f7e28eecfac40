"""Automatic checks stored with every trace and shown to reviewers.

``trace_checks`` computes every check of one trace from its texts (stored as ``checks``);
``check_flags`` turns them into the yes/no flags the queue, the analytics and the export
filter on. Two flags compare a trace with others (overthinking: its level's median tokens;
no reflection: its prompt version's median marker density): those medians are ``Norms``,
which ``expansion.norms`` keeps and applies to every trace when they move.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from annotator.answer_check import answers_compare

from .language import (
    EN,
    HAN_CHAR,
    MIN_UNITS,
    UNKNOWN,
    ZH,
    key_words,
    language_of,
    neutral_words,
    units,
)
from .markers import marker_counts
from .parsing import last_boxed, thought_paragraphs
from .repetition import repetitions

# Words that only a trace copied from the prompt's record would use. Matched as whole words
# (a plural too), so that "the recorded value" is not "the record".
LEAKAGE_PHRASES = (
    "annotator", "the annotation", "the record", "the notes", "the note says", "reference solution",
    "the hint", "as instructed", "the user's steps", "common sense used here",
)  # fmt: skip
# The record's structure named in the trace: the solver has no numbered steps to look at or
# quote. A step the solver writes itself ("Step 2: compute x", "from step 2 we know") is its
# own structure and is not flagged; neither is "the previous step", which a solver says too.
_STEP = r"step\s+(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)"
_SOURCE = rf"(?:{_STEP}|the\s+(?:record|annotation|notes?))"
LEAKAGE_STRUCTURE = (
    rf"look(?:ing|s)?\s+at\s+{_STEP}",
    rf"{_STEP}\s+(?:says|said|states|stated|mentions|mentioned|notes|noted|tells\s+us|claims|reads)",
    rf"(?:according\s+to|as\s+(?:noted|stated|said|written|given|described|mentioned)\s+in)"
    rf"\s+{_SOURCE}",
)
# The same in Chinese, which has no word boundaries to match on: the annotator (标注者), the
# record (根据记录), the notes, the reference solution, the hint, the instructions, and the
# record's numbered steps named as a source (第2步说, 根据第三步). A solver's own "第2步：" is
# its own structure, as in English.
LEAKAGE_PHRASES_ZH = (
    "标注者", "标注员", "标注中", "根据记录", "记录中", "记录里", "这份记录", "笔记中", "根据笔记",
    "参考答案", "参考解答", "参考解法", "根据提示", "提示中", "按照要求", "按要求", "用到的常识",
)  # fmt: skip
_ZH_STEP = r"第\s*(?:\d+|[一二三四五六七八九十]+)\s*步"
LEAKAGE_STRUCTURE_ZH = (
    rf"(?:根据|按照|参考|看一下|看看)\s*{_ZH_STEP}",
    rf"{_ZH_STEP}\s*(?:里|中)?\s*(?:说|提到|指出|写道|写着|给出)",
)
LEAKAGE = re.compile(
    "|".join(rf"\b(?:{pattern})\b" for pattern in LEAKAGE_STRUCTURE)
    + "|" + "|".join(rf"\b{re.escape(phrase)}s?\b" for phrase in LEAKAGE_PHRASES),
    re.IGNORECASE,
)  # fmt: skip
# Apart, and only on a text with Chinese in it: one pattern of both is three times slower.
LEAKAGE_ZH = re.compile(
    "|".join(LEAKAGE_STRUCTURE_ZH) + "|" + "|".join(map(re.escape, LEAKAGE_PHRASES_ZH))
)
COVERED = 0.5  # share of a step's key words the thought must carry to count as kept


def _words(text: str, across: bool) -> set[str]:
    # Across languages only numbers and formulas can be compared.
    words = key_words(text)
    return neutral_words(words) if across else words


def step_coverage(
    steps: list[dict], thought: str, *, across: bool = False, present: set[str] | None = None
) -> list[dict]:
    """Per annotated step, the share of its key words that the thought carries.

    ``across``: the thought is in another language than the record, so only the words that
    read the same in both (numbers, LaTeX commands) are compared. ``present``: the thought's
    words, when the caller has them.
    """
    present = _words(thought, across) if present is None else present
    coverage = []
    for number, step in enumerate(steps, start=1):
        words = _words(step["text"], across)
        score = 1.0 if not words else len(words & present) / len(words)
        coverage.append({"step": number, "kind": step["kind"], "score": round(score, 3)})
    return coverage


def step_links(
    steps: list[dict],
    thought: str,
    coverage: list[dict],
    *,
    across: bool = False,
    paragraphs: list[set[str]] | None = None,
) -> list[dict]:
    """For each annotated step, the paragraph of the thought that carries it best.

    The paragraph is the one sharing the most key words with the step (None if none shares
    any); a step is missed when its coverage is under COVERED. ``paragraphs``: the words of
    each paragraph, when the caller has them.
    """
    if paragraphs is None:
        paragraphs = [_words(p, across) for p in thought_paragraphs(thought)]
    scores = {item["step"]: item["score"] for item in coverage}
    links = []
    for number, step in enumerate(steps, start=1):
        words = _words(step["text"], across)
        best, best_overlap = None, 0
        for index, present in enumerate(paragraphs, start=1):
            overlap = len(words & present)
            if overlap > best_overlap:
                best, best_overlap = index, overlap
        score = scores.get(number, 0.0)
        links.append({"step": number, "paragraph": best, "score": score, "missed": score < COVERED})
    return links


def leakage(text: str) -> list[str]:
    """The phrases of a text that give away the record, each once, as they were written."""
    matches = [*LEAKAGE.finditer(text), *(LEAKAGE_ZH.finditer(text) if HAN_CHAR.search(text)
                                          else ())]  # fmt: skip
    matches.sort(key=lambda match: match.start())
    return list(dict.fromkeys(" ".join(match.group(0).lower().split()) for match in matches))


def record_language(steps: list[dict]) -> str:
    """The language the annotator wrote the record in (its steps and notes)."""
    return language_of("\n".join(
        [step.get("text", "") for step in steps]
        + [note for step in steps for note in step.get("notes", [])]
    ))  # fmt: skip


def language_check(thought: str, steps: list[dict]) -> dict:
    """The record's and the thought's languages, and the paragraphs that switch.

    A paragraph switches when it is written in another language than the thought as a
    whole, or carries MIN_UNITS or more of the other script (a sentence, not a term).
    Paragraphs with fewer than MIN_UNITS units in all are too short to tell.
    """
    counted = [units(paragraph) for paragraph in thought_paragraphs(thought)]
    han, latin = sum(c[0] for c in counted), sum(c[1] for c in counted)
    record = record_language(steps)
    trace = UNKNOWN if not han + latin else ZH if han > latin else EN
    switches = []
    for number, (han, latin) in enumerate(counted, start=1):
        if han + latin < MIN_UNITS or trace == UNKNOWN:
            continue
        own = ZH if han > latin else EN
        other = latin if trace == ZH else han
        if own != trace or other >= MIN_UNITS:
            switches.append(number)
    differs = UNKNOWN not in (record, trace) and record != trace
    return {"record": record, "trace": trace, "switches": switches,
            "mixed": differs or bool(switches)}  # fmt: skip


@dataclass(frozen=True)
class Norms:
    """The medians a trace is compared with, and how many succeeded traces are behind each."""

    tokens_median: float | None = None  # completion tokens, of the level or pass rate range
    tokens_traces: int = 0
    density_median: float | None = None  # reflection markers per 1,000 tokens, prompt version
    density_traces: int = 0
    # The pass rate range (e.g. "80–100%") whose traces the tokens median is of; None: the
    # problem's level.
    pass_rate_range: str | None = None


def overthinking_limit(median: float | None, traces: int) -> float | None:
    """Completion tokens above which a trace overthinks; None while too few traces exist."""
    if median is None or traces < settings.CHECK_NORM_MIN_TRACES:
        return None
    return settings.CHECK_OVERTHINKING_FACTOR * median


def reflection_floor(median: float | None, traces: int) -> float | None:
    """Marker density "far below" the median: under CHECK_REFLECTION_FLOOR times it."""
    if not median or traces < settings.CHECK_NORM_MIN_TRACES:
        return None
    return settings.CHECK_REFLECTION_FLOOR * median


def check_flags(checks: dict, norms: Norms = Norms()) -> dict[str, bool]:  # noqa: B008
    """The yes/no flags the review queue filters on, from a trace's checks.

    The flags that compare with other traces use ``norms``; without them only their
    absolute part counts (no marker at all), as before enough traces exist.
    """
    tokens = checks.get("completion_tokens")
    limit = overthinking_limit(norms.tokens_median, norms.tokens_traces)
    floor = reflection_floor(norms.density_median, norms.density_traces)
    return {
        # Only a definite mismatch: None means it could not be compared (no reference
        # answer, or math-verify could not read one of them), which reviewers see as such.
        "flag_answer_mismatch": checks.get("matches_reference") is False,
        "flag_low_coverage": checks.get("coverage_mean", 1.0) < settings.CHECK_LOW_COVERAGE,
        "flag_too_short": bool(checks.get("too_short")),
        "flag_leakage": bool(checks.get("leakage")),
        "flag_truncated": bool(checks.get("truncated")),
        "flag_repetition": bool(checks.get("repetition")),
        # The density needs a token count: without one it is 0 for want of a divisor.
        "flag_no_reflection": checks.get("reflection_count") == 0
        or (floor is not None and bool(tokens) and checks.get("reflection_density", 0.0) < floor),
        "flag_format": bool(checks.get("format")),
        "flag_overthinking": limit is not None and tokens is not None and tokens > limit,
        "flag_language_mix": bool(checks.get("language", {}).get("mixed")),
    }


def thought_repetitions(thought: str) -> list[dict]:
    """The loops of a thought, by the CHECK_REPETITION_* thresholds."""
    return repetitions(
        thought,
        n=settings.CHECK_REPETITION_NGRAM,
        ngram_max=settings.CHECK_REPETITION_NGRAM_MAX,
        line_max=settings.CHECK_REPETITION_LINE_MAX,
    )


def answer_checks(boxed: str, *, reference_answer: str, annotator_answer: str) -> dict:
    """The boxed answer against the reference and the annotator's answers.

    ``answer_timed_out`` lists the comparisons left unchecked (None) for lack of time, which
    a periodic task compares again (traces_recheck_answers); an answer math-verify could not
    read, or a missing reference, is None without it and stays so.
    """
    if not boxed:
        return {"matches_reference": False, "matches_annotator": False, "answer_timed_out": []}
    reference = answers_compare(reference_answer, boxed)
    annotator = answers_compare(annotator_answer, boxed)
    return {
        "matches_reference": reference.match,
        "matches_annotator": annotator.match,
        "answer_timed_out": [name for name, comparison in
                             (("reference", reference), ("annotator", annotator))
                             if comparison.timed_out],
    }  # fmt: skip


def trace_checks(
    *,
    thought: str,
    solution: str,
    split_ok: bool,
    finish_reason: str,
    completion_tokens: int | None,
    tokens_estimated: bool = False,
    target_min: int,
    target_max: int | None = None,
    reference_answer: str,
    annotator_answer: str,
    steps: list[dict],
    answers: dict | None = None,
) -> dict:
    """Every check of a trace. Without a token count the length checks are None (unchecked,
    never "too short"); ``tokens_estimated`` marks a count the provider did not report.
    ``answers``: the answer checks already made for this boxed answer, kept as they are."""
    boxed = last_boxed(solution) or last_boxed(thought)
    language = language_check(thought, steps)
    across = UNKNOWN not in (language["record"], language["trace"]) and (
        language["record"] != language["trace"]
    )
    # Each paragraph's words once, for the coverage (the thought's are theirs together) and
    # for the links of steps to paragraphs.
    paragraphs = [_words(p, across) for p in thought_paragraphs(thought)]
    coverage = step_coverage(steps, thought, across=across, present=set().union(*paragraphs))
    missed = [item["step"] for item in coverage if item["score"] < COVERED]
    markers = marker_counts(thought, language=language["trace"] or EN)
    reflections = sum(markers.values())
    problems = [name for name, failed in (("unsplit", not split_ok), ("no_boxed", not boxed))
                if failed]  # fmt: skip
    counted = completion_tokens is not None
    return {
        "completion_tokens": completion_tokens,
        "tokens_estimated": tokens_estimated,
        "target_min": target_min,
        "too_short": completion_tokens < target_min if counted else None,
        "target_max": target_max,
        "too_long": (target_max is not None and completion_tokens > target_max)
        if counted
        else None,
        "boxed_answer": boxed,
        **(
            answers
            if answers is not None
            else answer_checks(
                boxed, reference_answer=reference_answer, annotator_answer=annotator_answer
            )
        ),
        "coverage": coverage,
        "coverage_mean": round(sum(c["score"] for c in coverage) / len(coverage), 3)
        if coverage
        else 1.0,
        # "neutral": record and thought are in different languages, so only numbers and
        # formulas were compared.
        "coverage_basis": "neutral" if across else "words",
        "missed_steps": missed,
        # Stored so that the review page need not match every step against every paragraph.
        "step_links": step_links(steps, thought, coverage, across=across, paragraphs=paragraphs),
        "markers": markers,
        "reflection_count": reflections,
        "reflection_density": round(1000 * reflections / completion_tokens, 2)
        if completion_tokens
        else 0.0,
        "leakage": leakage(f"{thought}\n{solution}"),
        "truncated": finish_reason == "length",
        "split_ok": split_ok,
        "format": problems,
        "repetition": thought_repetitions(thought),
        "language": language,
    }
