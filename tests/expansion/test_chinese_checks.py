"""A Chinese record expanded into a Chinese trace and into an English trace: coverage,
leakage, reflection markers and the language-mix check."""

from expansion.checks import check_flags, leakage, trace_checks
from expansion.language import key_words, language_of
from expansion.markers import marker_count, marker_counts

STEPS = [
    {"kind": "attempt", "text": "设这两个数为 $a$ 和 $b$，已知它们的和是 $10$，乘积是 $21$。",
     "notes": []},
    {"kind": "attempt", "text": "先试着直接猜：$a=4$，$b=6$，但乘积是 $24$，不对。", "notes": []},
    {"kind": "correction", "text": "改用一元二次方程 $t^2-10t+21=0$ 求解，得到 $t=3$ 或 $t=7$。",
     "notes": ["和为 $s$、积为 $p$ 的两个数是方程 $t^2-st+p=0$ 的根。"]},
    {"kind": "verification", "text": "验证：$3+7=10$，$3\\times 7=21$，符合条件。", "notes": []},
]  # fmt: skip
OPENING = "嗯，题目说两个数的和是 $10$，乘积是 $21$，要求较大的那个数。"
SET_UP = "我先设这两个数为 $a$ 和 $b$，已知它们的和是 $10$，乘积是 $21$。"
GUESS = "先试着直接猜：取 $a=4$，$b=6$，和没问题，但乘积是 $24$。等等，不对，乘积应该是 $21$。"
EQUATION = (
    "换个思路，改用一元二次方程：这两个数是 $t^2-10t+21=0$ 的根。求解这个方程，"
    "得到 $t=3$ 或 $t=7$。"
)
CHECK = "让我验证一下：$3+7=10$，$3\\times 7=21$，符合条件。所以较大的数是 $7$。"
CHINESE = "\n\n".join([OPENING, SET_UP, GUESS, EQUATION, CHECK])
ENGLISH = "\n\n".join([
    "Hmm, two numbers add up to $10$ and multiply to $21$; I want the larger one.",
    "Let me first just guess: $a=4$ and $b=6$ give the right sum, but the product is $24$. "
    "Wait, that is wrong, the product must be $21$.",
    "Alternatively, the two numbers are the roots of $t^2-10t+21=0$, which gives $t=3$ or $t=7$.",
    "Let me check: $3+7=10$ and $3\\times 7=21$. So the larger number is $7$.",
])  # fmt: skip
ANSWERS = {"matches_reference": True, "matches_annotator": True, "answer_timed_out": []}


def checks_of(thought: str, solution: str = "较大的数是 $\\boxed{7}$。") -> dict:
    return trace_checks(
        thought=thought, solution=solution, split_ok=True, finish_reason="stop",
        completion_tokens=400, target_min=300, reference_answer="7", annotator_answer="7",
        steps=STEPS, answers=ANSWERS,
    )  # fmt: skip


def raised(checks: dict) -> set[str]:
    return {name for name, value in check_flags(checks).items() if value}


def test_chinese_text_has_key_words_made_of_character_bigrams():
    words = key_words("改用一元二次方程求解")
    assert {"一元", "二次", "方程", "求解"} <= words
    assert "的和" not in key_words("它们的和")  # grammar, not content
    assert language_of(CHINESE) == "zh" and language_of(ENGLISH) == "en"
    assert language_of("$x^2 + 1$") == ""


def test_a_faithful_chinese_trace_covers_every_step_and_raises_nothing():
    checks = checks_of(CHINESE)
    assert checks["coverage_basis"] == "words"
    assert checks["missed_steps"] == []
    assert checks["coverage_mean"] >= 0.8
    assert checks["leakage"] == []
    assert checks["language"] == {"record": "zh", "trace": "zh", "switches": [], "mixed": False}
    assert raised(checks) == set()


def test_a_chinese_trace_that_drops_a_step_misses_it():
    checks = checks_of("\n\n".join([OPENING, SET_UP, GUESS, CHECK]))
    assert checks["missed_steps"] == [3]
    # The link of each kept step points at the paragraph that carries it.
    links = {link["step"]: link["paragraph"] for link in checks["step_links"]}
    assert links[1] == 2 and links[2] == 3


def test_chinese_leakage_is_found_and_a_solvers_own_steps_are_not():
    assert leakage("根据记录，第2步说乘积是 $24$。") == ["根据记录", "第2步说"]
    assert leakage("参考答案是 7，标注者也这么写。") == ["参考答案", "标注者"]
    assert leakage("第2步：解方程。第三步：验证。") == []
    checks = checks_of(CHINESE + "\n\n按照要求，我把答案写成 $7$。")
    assert checks["leakage"] == ["按照要求"] and "flag_leakage" in raised(checks)


def test_chinese_reflection_markers_are_counted_where_a_clause_starts():
    counts = marker_counts(CHINESE, language="zh")
    assert counts["嗯"] == 1 and counts["等等"] == 1 and counts["不对"] == 1
    assert counts["换个思路"] == 1 and counts["让我验证"] == 1 and counts["但是"] == 0
    assert checks_of(CHINESE)["reflection_count"] == sum(counts.values()) == 5
    # Inside a word, a marker's characters are not the marker.
    assert marker_count("这个图形是不对称的。", "不对") == 0
    assert marker_count("之所以这样，是因为……所以答案是 7。", "所以") == 1


def test_a_chinese_trace_without_reflection_is_flagged():
    flat = "\n\n".join([SET_UP, EQUATION.replace("换个思路，", ""), "所以较大的数是 $7$。"])
    checks = checks_of(flat)
    assert checks["reflection_count"] == 0 and "flag_no_reflection" in raised(checks)


def test_an_english_trace_of_a_chinese_record_is_a_language_mix_compared_on_numbers():
    checks = checks_of(ENGLISH, solution="The larger number is $\\boxed{7}$.")
    assert checks["language"]["record"] == "zh" and checks["language"]["trace"] == "en"
    assert checks["coverage_basis"] == "neutral"
    # Its numbers and formulas carry every step, so coverage does not cry wolf; the mix does.
    assert checks["missed_steps"] == [] and checks["coverage_mean"] >= 0.8
    assert checks["markers"]["wait"] == 1 and checks["markers"]["alternatively"] == 1
    assert raised(checks) == {"flag_language_mix"}


def test_a_thought_that_switches_language_midway_is_flagged():
    switched = "\n\n".join([
        OPENING, SET_UP, GUESS,
        "Let me think about this in another way: the two numbers are the roots of a quadratic "
        "equation whose coefficients come from the sum and the product.",
        EQUATION, CHECK,
    ])  # fmt: skip
    checks = checks_of(switched)
    assert checks["language"]["trace"] == "zh" and checks["language"]["switches"] == [4]
    assert "flag_language_mix" in raised(checks)


def test_an_english_term_in_a_chinese_paragraph_is_no_switch():
    checks = checks_of(CHINESE.replace("换个思路，", "换个思路，用 Vieta 定理，"))
    assert checks["language"]["switches"] == [] and "flag_language_mix" not in raised(checks)
