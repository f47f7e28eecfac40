"""The automatic checks of one trace at about 3,000 tokens: time per trace, and per check.

Three thoughts: the simulated endpoint's English trace of a four-step record (3,000 words),
a Chinese trace of a Chinese record (about 3,000 characters), and an English trace that
falls into a loop half-way (the repetition check then also locates it). Each is checked
``--runs`` times by ``expansion.checks.trace_checks`` with the answer comparisons given (they
run in math-verify's process pool, are bounded apart and are not what this measures;
``--with-answers`` includes them). Printed: p50 / p95 / max milliseconds per trace (wall
time, then the process's CPU time, which a loaded machine does not inflate), the flags
raised, and the p50 of each part (wall time). Target: under 20 ms per trace. Figures are
printed, never asserted.

    .venv/bin/python bench/checks.py [--runs 200] [--with-answers]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from devtools.simulated_text import build_trace  # noqa: E402
from expansion import checks, language, markers, repetition  # noqa: E402
from expansion.parsing import split_thought, thought_paragraphs  # noqa: E402
from expansion.prompts import DEFAULT_PROMPT, build_messages  # noqa: E402

STEPS = [
    {"kind": "attempt", "text": "Try factoring $x^2-5x+6$ as $(x-2)(x-3)$ so the roots are 2 "
     "and 3.", "notes": ["A quadratic with roots r and s factors as (x-r)(x-s)."]},
    {"kind": "reflection", "text": "Wait, the problem asks for the sum of the squares of the "
     "roots, not the roots.", "notes": []},
    {"kind": "correction", "text": "Sum of squares is $2^2+3^2=13$.", "notes": []},
    {"kind": "verification", "text": "Check with Vieta: $(r+s)^2-2rs = 25-12 = 13$.", "notes": []},
]  # fmt: skip
STEPS_ZH = [
    {"kind": "attempt", "text": "设这两个数为 $a$ 和 $b$，已知它们的和是 $10$，乘积是 $21$。",
     "notes": []},
    {"kind": "attempt", "text": "先试着直接猜：$a=4$，$b=6$，但乘积是 $24$，不对。", "notes": []},
    {"kind": "correction", "text": "改用一元二次方程 $t^2-10t+21=0$ 求解，得到 $t=3$ 或 $t=7$。",
     "notes": []},
    {"kind": "verification", "text": "验证：$3+7=10$，$3\\times 7=21$，符合条件。", "notes": []},
]  # fmt: skip
PARAGRAPHS_ZH = [
    "嗯，题目说两个数的和是 $10$，乘积是 $21$，要求较大的那个数。我先把已知条件写清楚。",
    "我先设这两个数为 $a$ 和 $b$，已知它们的和是 $10$，乘积是 $21$，这是两个方程。",
    "先试着直接猜：取 $a=4$，$b=6$，和没问题，但乘积是 $24$。等等，不对，乘积应该是 $21$。",
    "换个思路，改用一元二次方程：这两个数是 $t^2-10t+21=0$ 的根，求解得到 $t=3$ 或 $t=7$。",
    "让我验证一下：$3+7=10$，$3\\times 7=21$，符合条件。所以较大的数是 $7$，较小的是 $3$。",
    "停下来整理一下：从和与积出发，猜测失败以后改用方程，方程的两个根正好满足两个条件。",
    "其实还可以用判别式检查：$100-84=16$，开方是 $4$，两个根相差 $4$，和为 $10$，也对得上。",
]
ANSWERS = {"matches_reference": True, "matches_annotator": True, "answer_timed_out": []}


class _Prompt:
    target_tokens_min, target_tokens_max = 1500, 3000

    def __init__(self):
        for name, value in DEFAULT_PROMPT.items():
            setattr(self, name, value)


def english_trace() -> tuple[str, str]:
    messages = build_messages(
        _Prompt(), record={"steps": STEPS, "final_answer": "13"},
        problem_statement="Find the sum of the squares of the roots of $x^2-5x+6=0$.",
    )  # fmt: skip
    content, _ = build_trace(messages, 0, 3000)
    return split_thought(content)


def chinese_trace() -> tuple[str, str]:
    paragraphs, size, n = [], 0, 0
    while size < 3000:
        # A number of its own in every clause, so that the paragraphs do not loop.
        text = PARAGRAPHS_ZH[n % len(PARAGRAPHS_ZH)]
        for mark in "，。：":
            text = text.replace(mark, f"（{n + 1}）{mark}")
        paragraphs.append(text)
        size += sum(language.units(text))
        n += 1
    return "\n\n".join(paragraphs), "较大的数是 $\\boxed{7}$。"


def looping_trace(thought: str) -> str:
    half = thought[: len(thought) // 2]
    loop = "So the sum of the squares is thirteen, and that is what I keep getting here. "
    return half + "\n\n" + loop * 40


def timed(function, runs: int, clock=time.perf_counter) -> list[float]:
    times = []
    for _ in range(runs):
        start = clock()
        function()
        times.append((clock() - start) * 1000)
    return times


def p95(times: list[float]) -> float:
    return sorted(times)[max(0, int(len(times) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--with-answers", action="store_true")
    options = parser.parse_args()
    thought, solution = english_trace()
    zh_thought, zh_solution = chinese_trace()
    cases = [
        ("English, simulated", thought, solution, STEPS),
        ("Chinese", zh_thought, zh_solution, STEPS_ZH),
        ("English, looping", looping_trace(thought), solution, STEPS),
    ]
    print(f"Checks per trace, {options.runs} runs each"
          f"{' with the answer comparisons' if options.with_answers else ''}:")  # fmt: skip
    for name, text, answer, steps in cases:
        words, han = len(text.split()), language.units(text)[0]

        def check(text=text, answer=answer, steps=steps):
            return checks.trace_checks(
                thought=text, solution=answer, split_ok=True, finish_reason="stop",
                completion_tokens=3000, target_min=1500, target_max=3000,
                reference_answer="13" if steps is STEPS else "7",
                annotator_answer="13" if steps is STEPS else "7", steps=steps,
                answers=None if options.with_answers else ANSWERS,
            )  # fmt: skip

        result = check()
        flags = [n for n, v in checks.check_flags(result).items() if v] or ["none"]
        times = timed(check, options.runs)
        # CPU time of this process: on a shared machine the wall time also counts the time
        # spent waiting for a core, which the checks do not cost.
        cpu = timed(check, options.runs, time.process_time)
        paragraphs = len(thought_paragraphs(text))
        print(f"  {name}: {words} words, {han} Chinese characters, {paragraphs} paragraphs; "
              f"p50 {statistics.median(times):.1f} ms, p95 {p95(times):.1f} ms, "
              f"max {max(times):.1f} ms; CPU p50 {statistics.median(cpu):.1f} ms, "
              f"p95 {p95(cpu):.1f} ms; flags {', '.join(flags)}")  # fmt: skip
        lang = result["language"]["trace"] or "en"
        parts = {
            "repetition": lambda text=text: repetition.repetitions(
                text, n=settings.CHECK_REPETITION_NGRAM,
                ngram_max=settings.CHECK_REPETITION_NGRAM_MAX,
                line_max=settings.CHECK_REPETITION_LINE_MAX),
            "coverage and links": lambda text=text, steps=steps: checks.step_links(
                steps, text, checks.step_coverage(steps, text)),
            "markers": lambda text=text, lang=lang: markers.marker_counts(text, language=lang),
            "language": lambda text=text, steps=steps: checks.language_check(text, steps),
            "leakage": lambda text=text: checks.leakage(text),
        }  # fmt: skip
        print("    " + ", ".join(f"{part} {statistics.median(timed(f, 50)):.1f} ms"
                                 for part, f in parts.items()))  # fmt: skip
    print(f"  load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
