"""Degenerate traces on hand-made texts: loops, no reflection, broken format, overthinking.

Each check is run on a clean trace too, which must raise nothing.
"""

import pytest

from expansion.checks import Norms, check_flags, trace_checks

STEPS = [
    {"kind": "attempt", "text": "Factor the quadratic polynomial into linear factors", "notes": []},
    {"kind": "correction", "text": "Vieta relations give roots summing five", "notes": []},
]
ANSWERS = {"matches_reference": True, "matches_annotator": True, "answer_timed_out": []}
CLEAN = "\n\n".join([
    "Hmm, so I need the roots of $x^2-5x+6$. Let me factor the quadratic polynomial into "
    "linear factors: two numbers with product 6 and sum 5.",
    "Those are 2 and 3, so $(x-2)(x-3)$. Wait, let me check with Vieta relations: the roots "
    "are summing five and their product is six. That fits.",
    "Let me pause and take stock. I have the factors, and the roots 2 and 3 agree with Vieta.",
    "Alternatively I could use the quadratic formula, but the factoring is already checked.",
])  # fmt: skip


def checks_of(thought: str = CLEAN, solution: str = r"The roots sum to \boxed{5}.", **kw) -> dict:
    arguments = dict(
        thought=thought, solution=solution, split_ok=True, finish_reason="stop",
        completion_tokens=1600, target_min=1500, reference_answer="5", annotator_answer="5",
        steps=STEPS, answers=ANSWERS,
    )  # fmt: skip
    return trace_checks(**{**arguments, **kw})


def raised(checks: dict, norms: Norms = Norms()) -> set[str]:  # noqa: B008
    return {name for name, value in check_flags(checks, norms).items() if value}


def test_a_clean_trace_raises_no_flag():
    checks = checks_of()
    assert raised(checks) == set()
    assert checks["repetition"] == [] and checks["format"] == []
    assert checks["language"] == {"record": "en", "trace": "en", "switches": [], "mixed": False}


# -- repetition ----------------------------------------------------------------------------


def test_a_sentence_in_a_loop_is_flagged_with_what_repeats_and_where():
    sentence = "So the value of x must be four because the equation says so and nothing else. "
    loop = "Now let me be sure.\n\n" + sentence * 12 + "\n\nBut wait, " + sentence * 3
    checks = checks_of(CLEAN + "\n\n" + loop)
    assert "flag_repetition" in raised(checks)
    (finding,) = [f for f in checks["repetition"] if f["kind"] == "ngram"]
    assert finding["count"] > 10
    assert "the value of x must be four" in finding["text"]
    thought = CLEAN + "\n\n" + loop
    assert thought[finding["positions"][0] :].startswith(finding["text"])
    # The loop starts in the sixth paragraph and comes back in the seventh.
    assert finding["paragraphs"] == [6, 7]


def test_a_line_repeated_more_than_k_times_is_flagged():
    line = "Let me recompute the discriminant of this quadratic now."
    thought = CLEAN + "\n\n" + "\n".join([line] * 11)
    checks = checks_of(thought)
    found = {f["kind"]: f for f in checks["repetition"]}
    assert found["line"]["count"] == 11 and found["line"]["text"] == line.lower()
    assert "flag_repetition" in raised(checks)


def test_recaps_of_a_journey_are_not_a_loop():
    recap = "Let me pause and take stock: the roots are 2 and 3 and they sum to 5."
    # A pause that restates what is known a few times, and short lines that come back.
    thought = "\n\n".join([CLEAN, recap, "Wait.", CLEAN, recap, "Wait.", recap, "Wait."])
    assert "flag_repetition" not in raised(checks_of(thought))


@pytest.mark.parametrize("setting", ["CHECK_REPETITION_NGRAM_MAX", "CHECK_REPETITION_LINE_MAX"])
def test_the_repetition_thresholds_are_settings(settings, setting):
    line = "Let me recompute the discriminant of this quadratic now."
    thought = CLEAN + "\n\n" + "\n".join([line] * 4)
    assert "flag_repetition" not in raised(checks_of(thought))
    setattr(settings, setting, 1)
    assert "flag_repetition" in raised(checks_of(thought))


# -- reflection ----------------------------------------------------------------------------


def test_a_trace_without_any_reflection_marker_is_flagged():
    flat = "Factor the quadratic polynomial into linear factors: (x-2)(x-3). Vieta relations " \
        "give roots summing five. So the answer is 5."  # fmt: skip
    checks = checks_of(flat)
    assert checks["reflection_count"] == 0
    assert raised(checks) == {"flag_no_reflection"}


def test_a_density_far_below_the_prompt_versions_median_is_flagged():
    checks = checks_of()  # 4 markers in 1,600 tokens: 2.5 per 1,000
    assert checks["reflection_density"] == 2.5
    # Far below: under a quarter (CHECK_REFLECTION_FLOOR) of the median.
    assert "flag_no_reflection" in raised(checks, Norms(density_median=12.0, density_traces=40))
    assert "flag_no_reflection" not in raised(checks, Norms(density_median=8.0, density_traces=40))
    # Without a token count there is no density to compare.
    uncounted = checks_of(completion_tokens=None)
    assert "flag_no_reflection" not in raised(uncounted, Norms(density_median=12.0,
                                                               density_traces=40))  # fmt: skip
    # Too few traces behind the median: only "no marker at all" counts.
    assert "flag_no_reflection" not in raised(checks, Norms(density_median=12.0, density_traces=19))


# -- format --------------------------------------------------------------------------------


def test_a_trace_that_could_not_be_split_is_flagged_format():
    checks = checks_of(split_ok=False, solution="")
    assert "unsplit" in checks["format"] and "flag_format" in raised(checks)


def test_a_trace_without_a_boxed_answer_is_flagged_format():
    checks = checks_of(solution="The roots sum to 5.", answers=None)
    assert checks["format"] == ["no_boxed"]
    assert {"flag_format", "flag_answer_mismatch"} <= raised(checks)


# -- overthinking --------------------------------------------------------------------------


def test_overthinking_is_more_than_three_times_the_levels_median_with_twenty_traces_behind():
    checks = checks_of(completion_tokens=3100)
    assert "flag_overthinking" in raised(checks, Norms(tokens_median=1000, tokens_traces=20))
    assert "flag_overthinking" not in raised(checks, Norms(tokens_median=1100, tokens_traces=20))
    assert "flag_overthinking" not in raised(checks, Norms(tokens_median=1000, tokens_traces=19))
    uncounted = checks_of(completion_tokens=None)
    assert "flag_overthinking" not in raised(uncounted, Norms(tokens_median=1000, tokens_traces=20))


def test_the_overthinking_factor_is_a_setting(settings):
    checks = checks_of(completion_tokens=2100)
    norms = Norms(tokens_median=1000, tokens_traces=20)
    assert "flag_overthinking" not in raised(checks, norms)
    settings.CHECK_OVERTHINKING_FACTOR = 2.0
    assert "flag_overthinking" in raised(checks, norms)
