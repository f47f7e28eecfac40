"""Automatic checks stored with every trace and shown to reviewers."""

import re

from annotator.answer_check import answers_compare

from .markers import marker_counts
from .parsing import last_boxed, thought_paragraphs

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
LEAKAGE = re.compile(
    "|".join(rf"\b(?:{pattern})\b" for pattern in LEAKAGE_STRUCTURE)
    + "|" + "|".join(rf"\b{re.escape(phrase)}s?\b" for phrase in LEAKAGE_PHRASES),
    re.IGNORECASE,
)  # fmt: skip
STOPWORDS = set(
    """the a an and or of to in on for is are be this that it we so then with as at by from
    not but if let try get gives give which what when there their its into have has was
    were will would can could should must our us you your than also""".split()  # noqa: SIM905
)
COVERED = 0.5  # share of a step's key words the thought must carry to count as kept
WORD = re.compile(r"[A-Za-z]{3,}|\d+(?:\.\d+)?|\\[A-Za-z]+")


def key_words(text: str) -> set[str]:
    """The words of a text that say what it is about: a step's, a paragraph's, a thought's."""
    return {w.lower() for w in WORD.findall(text) if w.lower() not in STOPWORDS}


def step_coverage(steps: list[dict], thought: str) -> list[dict]:
    """Per annotated step, the share of its key words that the thought carries."""
    present = key_words(thought)
    coverage = []
    for number, step in enumerate(steps, start=1):
        words = key_words(step["text"])
        score = 1.0 if not words else len(words & present) / len(words)
        coverage.append({"step": number, "kind": step["kind"], "score": round(score, 3)})
    return coverage


def step_links(steps: list[dict], thought: str, coverage: list[dict]) -> list[dict]:
    """For each annotated step, the paragraph of the thought that carries it best.

    The paragraph is the one sharing the most key words with the step (None if none shares
    any); a step is missed when its coverage is under COVERED.
    """
    paragraphs = [key_words(p) for p in thought_paragraphs(thought)]
    scores = {item["step"]: item["score"] for item in coverage}
    links = []
    for number, step in enumerate(steps, start=1):
        words = key_words(step["text"])
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
    found = (" ".join(match.group(0).lower().split()) for match in LEAKAGE.finditer(text))
    return list(dict.fromkeys(found))


LOW_COVERAGE = 0.8  # mean coverage under this is flagged for reviewers


def check_flags(checks: dict) -> dict[str, bool]:
    """The yes/no flags the review queue filters on, from a trace's checks."""
    return {
        # Only a definite mismatch: None means it could not be compared (no reference
        # answer, or math-verify could not read one of them), which reviewers see as such.
        "flag_answer_mismatch": checks.get("matches_reference") is False,
        "flag_low_coverage": checks.get("coverage_mean", 1.0) < LOW_COVERAGE,
        "flag_too_short": bool(checks.get("too_short")),
        "flag_leakage": bool(checks.get("leakage")),
        "flag_truncated": bool(checks.get("truncated")),
    }


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
) -> dict:
    """Every check of a trace. Without a token count the length checks are None (unchecked,
    never "too short"); ``tokens_estimated`` marks a count the provider did not report."""
    boxed = last_boxed(solution) or last_boxed(thought)
    coverage = step_coverage(steps, thought)
    missed = [item["step"] for item in coverage if item["score"] < COVERED]
    markers = marker_counts(thought)
    reflections = sum(markers.values())
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
        **answer_checks(
            boxed, reference_answer=reference_answer, annotator_answer=annotator_answer
        ),
        "coverage": coverage,
        "coverage_mean": round(sum(c["score"] for c in coverage) / len(coverage), 3)
        if coverage
        else 1.0,
        "missed_steps": missed,
        # Stored so that the review page need not match every step against every paragraph.
        "step_links": step_links(steps, thought, coverage),
        "markers": markers,
        "reflection_count": reflections,
        "reflection_density": round(1000 * reflections / completion_tokens, 2)
        if completion_tokens
        else 0.0,
        "leakage": leakage(f"{thought}\n{solution}"),
        "truncated": finish_reason == "length",
        "split_ok": split_ok,
    }
