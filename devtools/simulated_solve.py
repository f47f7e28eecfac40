"""The simulator's answers to solve requests (a rollout sample): a short thought and a
solution ending in a ``\\boxed{}`` answer, in the format the prompt asks for.

A solve request asks for ``\\boxed`` and carries no annotator's record (an expansion
request's user message has "Record of the solver's thinking:"). For an arithmetic statement
("What is 12+7?": a+b, a-b, a*b) the answer is right in a share of samples and wrong in the
others, decided by the hash of the statement's arithmetic and the sample index (and seed):
the same request always gets the same answer, and a campaign gets a mix of correct and
incorrect samples.

With ``tokens`` (the simulator's ``solve_tokens``; benchmarks set it so that a sample costs
what an expansion answer does), the short thought is walked as a journey-learning trace
(``devtools/simulated_text.py``) to an answer of about that many tokens, with the same boxed
answer; 0 keeps the short answer of about 40 words.
"""

import hashlib
import re
from typing import Any

from .simulated_text import journey_thought, message_text, word_count

RECORD_MARK = "Record of the solver's thinking:"
STILL = ("<|begin_of_thought|>", "<|end_of_thought|>", "<|begin_of_solution|>",
         "<|end_of_solution|>")  # fmt: skip
ARITHMETIC = re.compile(r"(-?\d+)\s*([-+*×])\s*(-?\d+)")
OPERATIONS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
              "*": lambda a, b: a * b, "×": lambda a, b: a * b}  # fmt: skip


def is_solve_request(messages: list[Any]) -> bool:
    texts = [message_text(m) for m in messages if isinstance(m, dict)]
    return any("\\boxed" in text for text in texts) and not any(RECORD_MARK in t for t in texts)


def _user(messages: list[Any]) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def _draw(*parts: Any) -> float:
    """A number in [0, 1) fixed by the parts."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def correct_share(statement: str) -> float:
    """How often the simulated model solves this statement: between 0.2 and 0.8."""
    return 0.2 + 0.6 * _draw("share", statement)


def solve_answer(text: str, sample: Any) -> tuple[int | None, bool]:
    """(the boxed answer, whether it is right) for the first arithmetic of a statement (or
    of the request's text around it: the same either way) and a sample."""
    match = ARITHMETIC.search(text)
    if match is None:
        return None, False
    a, op, b = match.groups()
    right = OPERATIONS[op](int(a), int(b))
    statement = f"{a}{op}{b}"  # the prompt's wording around it changes nothing
    if _draw("sample", statement, sample) < correct_share(statement):
        return right, True
    return right + 1 + int(_draw("off", statement, sample) * 3), False  # never the right one


def _padded(thought: str, arithmetic: str, answer: Any, sample: Any, words: int) -> str:
    """The thought as a journey of about ``words`` words: its paragraphs are the moves
    (a "Wait" one a reflection), ending on the same answer."""
    paragraphs = thought.split("\n\n")[:-1] or [thought]  # the "Therefore" one ends it anyway
    kinds = ["reflection" if p.startswith("Wait") else "attempt" for p in paragraphs]
    pairs = enumerate(zip(kinds, paragraphs, strict=True), start=1)
    moves = [f"Step {n} ({kind}): {text}" for n, (kind, text) in pairs]
    problem = f"Problem:\nCompute {arithmetic}.\n\n" if arithmetic else ""
    user = (f"{problem}Record of the solver's thinking:\n" + "\n".join(moves)
            + f"\nFinal answer: {answer}")  # fmt: skip
    return journey_thought(user, sample, words)


def build_solution(messages: list[Any], sample: Any, tokens: int = 0) -> tuple[str, str]:
    """(content, thought) answering a solve request; with ``tokens``, about that long."""
    text = "\n".join(message_text(m) for m in messages if isinstance(m, dict))
    user = _user(messages)
    answer, right = solve_answer(user, sample)
    match = ARITHMETIC.search(user)
    if match is None:
        numbers = re.findall(r"-?\d+", user)
        answer = int(numbers[-1]) if numbers else 0
        thought = (
            "Hmm, let me read the problem again. The number that matters seems to be "
            f"{answer}.\n\nWait, let me check that nothing else is asked. So the answer is "
            f"{answer}."
        )
    else:
        a, op, b = match.groups()
        first = answer if right else answer - 1
        thought = (
            f"Let me compute {a} {op} {b}. Working it through, I get {first}.\n\n"
            f"Wait, let me check that once more. Going over it again gives {answer}.\n\n"
            f"Therefore, the answer is {answer}."
        )
    solution = f"Computing directly, the result is $\\boxed{{{answer}}}$."
    still = all(marker in text for marker in STILL)

    def wrapped(thought: str) -> str:
        if still:
            return (f"{STILL[0]}\n\n{thought}\n\n{STILL[1]}\n\n"
                    f"{STILL[2]}\n\n{solution}\n\n{STILL[3]}")  # fmt: skip
        return f"<think>\n{thought}\n</think>\n\n{solution}"

    if tokens:
        arithmetic = " ".join(match.groups()) if match else ""
        words = tokens - word_count(wrapped(""))
        thought = _padded(thought, arithmetic, answer, sample, words)
    return wrapped(thought), thought
