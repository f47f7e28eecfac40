"""The text of the simulated endpoint's answers: a journey-learning trace built from the request.

The user message is the one `expansion.prompts` builds: the problem, the solver's steps as
"Step N (kind): text" lines with "Common sense used here: ..." lines under them, and "Final
answer: ...". The trace walks those steps in order in the solver's voice (never naming them as
numbered steps, which the leakage check would flag), says each fact aloud where its step uses
it, pauses to take stock, reflects where the steps reflect, and reaches the requested length
with recaps and re-checks of what it already has, in whole sentences. So a demo shows the shape
of what a real model writes, and the checks (coverage, markers, boxed answer) have something
true to read. The same request and sample always get the same text.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import itertools
import json
import random
import re
from typing import Any

from . import trace_phrases as say

_FINAL_RE = re.compile(r"^\s*final answer\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_STEP_RE = re.compile(r"^\s*step\s*\d+\s*(?:\(([^)]*)\))?[^:]*:\s*(.*)$", re.IGNORECASE)
_NOTE_RE = re.compile(r"^\s*common sense used here\s*:\s*(.*)$", re.IGNORECASE)
_HEADERS = {"problem:": "problem", "record of the solver's thinking:": "steps"}
_TURNS = {"reflection", "correction", "backtrack"}  # kinds that overturn an earlier attempt
_BLANK = "there is little to go on, so let me reason from the question itself"
TAGS = 4  # the four STILL markers, one token each
QUOTES = 3  # times padding may restate one move or fact


def word_count(text: str | None) -> int:
    """Tokens as the simulator counts them: whitespace-separated words."""
    return len(text.split()) if text else 0


def message_text(message: Any) -> str:
    """Content as text; the SDK may send a list of typed parts instead of a string."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def word_pieces(text: str) -> list[str]:
    """Word-sized pieces (word + trailing whitespace); they concatenate back to `text`."""
    lead = text[: len(text) - len(text.lstrip())]
    return ([lead] if lead else []) + re.findall(r"\S+\s*", text)


@dataclasses.dataclass
class Move:
    kind: str
    text: str
    facts: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Solving:
    """What the request says: the problem, the solver's moves in order, the answer."""

    problem: str
    moves: list[Move]
    answer: str


def parse_request(user: str) -> Solving:
    problem: list[str] = []
    moves: list[tuple[str, list[str], list[str]]] = []  # kind, lines of text, facts
    section = None
    for line in user.splitlines():
        header = _HEADERS.get(line.strip().lower())
        if header or _FINAL_RE.match(line):
            section = header
        elif match := _STEP_RE.match(line):
            moves.append(((match[1] or "attempt").strip().lower(), [match[2]], []))
            section = "move"
        elif (match := _NOTE_RE.match(line)) and moves:
            moves[-1][2].append(match[1].strip())
        elif section == "problem":
            problem.append(line)
        elif section == "move":
            moves[-1][1].append(line)  # a move's text may run over several lines
    found = [Move(kind, "\n".join(lines).strip(), facts) for kind, lines, facts in moves]
    found = [move for move in found if move.text]
    if not found:  # not an expansion prompt: any line but the answer is a move
        rest = [x.strip() for x in user.splitlines() if x.strip() and not _FINAL_RE.match(x)]
        found = [Move("attempt", text) for text in rest[:12]]
    return Solving(
        problem="\n".join(problem).strip(),
        moves=found or [Move("attempt", _BLANK)],
        answer=(_FINAL_RE.findall(user) or ["0"])[-1],
    )


def _sentence(text: str) -> str:
    text = text.strip().rstrip(",;:")
    return text if not text or text[-1] in ".!?" else f"{text}."


def _gist(text: str) -> str:
    """The first sentence of a move, shortened when long, to recap it within a sentence."""
    first = re.split(r"(?<=[.!?])\s+", " ".join(text.split()), maxsplit=1)[0]
    first = first.rstrip(".!?;:, ")
    words = first.split()
    if len(words) > 14:
        cut = " ".join(words[:12])
        if cut.count("$") % 2 == 0 and cut.count("{") == cut.count("}"):
            first = f"{cut}…"
    head = first.split(" ", 1)[0]
    if len(head) > 1 and head.isalpha() and head[0].isupper() and head[1:].islower():
        first = first[0].lower() + first[1:]  # "Guess x" reads as "then guess x" mid-sentence
    return first


def _capital(text: str) -> str:
    """A sentence that opens the solution starts with a capital (not a variable: "x = 4")."""
    head = text.split(" ", 1)[0]
    return text[0].upper() + text[1:] if len(head) > 1 and head.isalpha() else text


def _as_math(answer: str) -> str:
    if "$" in answer or re.fullmatch(r"-?\d+(?:\.\d+)?|[A-Za-z][A-Za-z ]*", answer):
        return answer
    return f"${answer}$"


class _Writer:
    """Builds one trace; all choices come from one seeded generator."""

    def __init__(self, solving: Solving, rng: random.Random) -> None:
        self.solving, self.rng, self.seen, self.last = solving, rng, set(), None
        # How often padding has quoted each move or fact: past QUOTES it looks elsewhere,
        # since a text quoted over and over is the loop the repetition check flags.
        self.quoted: collections.Counter = collections.Counter()
        moves = solving.moves
        self.overturned = {
            i
            for i, move in enumerate(moves)
            if move.kind in ("attempt", "association")
            and any(later.kind in _TURNS for later in moves[i + 1 :])
        }
        problem = solving.problem.split("\n\n", 1)[0].strip()
        self.problem = problem if problem and word_count(problem) <= 40 else ""

    def pick(self, options: tuple[str, ...]) -> str:
        return self.rng.choice(options)

    def opening(self) -> str:
        if not self.problem:
            return "Hmm, let me think about how to approach this."
        ask = self.pick(
            ("Hmm, so the question is this: {p}", "Hmm, let me read this carefully: {p}")
        )
        return f"{ask.format(p=_sentence(self.problem))} Let me think about how to approach it."

    def move(self, index: int) -> str:
        move = self.solving.moves[index]
        kind = "first" if index == 0 else move.kind if move.kind in say.OPENERS else "attempt"
        parts = [self.pick(say.OPENERS[kind]).format(t=_sentence(move.text))]
        parts += [self.pick(say.FACTS).format(n=_sentence(fact)) for fact in move.facts]
        return " ".join(parts)

    def pause(self, index: int) -> str:
        upcoming = self.solving.moves[index + 1].kind
        return self.pick(say.PAUSES.get(upcoming, say.PAUSES["attempt"]))

    def padding(self, upto: int) -> str:
        """One paragraph that takes stock of the first `upto` moves; new text when it can."""
        makers = [self._recap, self._recheck, self._fact_again, self._reread]
        makers += [self._other_route, self._answer_sense]
        paragraph = ""
        for _ in range(6):  # a new paragraph, of another sort than the one before, if it can
            make = self.rng.choices(makers, weights=(4, 4, 1, 1, 1, 2))[0]
            paragraph = make(upto) or self._musing()
            if paragraph not in self.seen and make != self.last:
                break
        self.seen.add(paragraph)
        self.last = make
        return paragraph

    def _quotable(self, keys) -> list:
        return [key for key in keys if self.quoted[key] < QUOTES]

    def _recap(self, upto: int) -> str:
        start = max(0, upto - 4)
        recalled = self._quotable(range(start, upto))
        if not recalled:
            return ""
        self.quoted.update(recalled)
        told = [
            say.RECAP_LINKS["first" if i == 0 else self.solving.moves[i].kind].format(
                g=_gist(self.solving.moves[i].text)
            )
            for i in recalled
        ]
        listed = "; ".join(told)
        listed = listed[0].upper() + listed[1:]
        latest = self.solving.moves[upto - 1].kind
        onward = say.DOUBTFUL if latest == "reflection" else say.ONWARD
        onward = say.SETTLED if upto == len(self.solving.moves) else onward
        return f"{self.pick(say.RECAPS).format(list=listed)} {self.pick(onward)}"

    def _fresh(self, options: tuple[str, ...]) -> str:
        """One of `options` not used yet in this trace, or "" once all have been."""
        unused = [option for option in options if option not in self.seen]
        choice = self.rng.choice(unused) if unused else ""
        self.seen.add(choice)
        return choice

    def _other_route(self, upto: int) -> str:
        return "" if upto - 1 in self.overturned else self._fresh(say.OTHER_ROUTES)

    def _answer_sense(self, upto: int) -> str:
        if upto < len(self.solving.moves):  # only once the moves have reached it
            return ""
        sense = self._fresh(say.SENSE)
        return (
            sense and f"{sense.format(a=_as_math(self.solving.answer))} {self.pick(say.VERDICTS)}"
        )

    def _recheck(self, upto: int) -> str:
        standing = self._quotable(i for i in range(upto) if i not in self.overturned)
        if not standing:
            return ""
        chosen = self.rng.choice(standing)
        self.quoted[chosen] += 1
        text = _sentence(self.solving.moves[chosen].text)
        return f"{self.pick(say.RECHECKS).format(t=text)} {self.pick(say.VERDICTS)}"

    def _fact_again(self, upto: int) -> str:
        facts = self._quotable(fact for move in self.solving.moves[:upto] for fact in move.facts)
        if not facts:
            return ""
        chosen = self.rng.choice(facts)
        self.quoted[chosen] += 1
        fact = _sentence(chosen)
        return f"{self.pick(say.FACT_AGAIN).format(n=fact)} {self.pick(say.FACT_AFTER)}"

    def _reread(self, upto: int) -> str:
        if not self.problem:
            return ""
        reread = self.pick(say.REREADS).format(p=_sentence(self.problem))
        return f"{reread} {self.pick(say.REREAD_AFTER)}"

    def _musing(self) -> str:
        return " ".join(self.rng.sample(say.MUSINGS, 3))

    def exact(self, count: int) -> list[str]:
        """Whole sentences of `count` words in all (short ones always exist for the rest)."""
        sentences: list[str] = []
        pool = [*say.MUSINGS, *say.SHORT]
        while count > 0:
            fitting = [s for s in pool if word_count(s) <= count and s not in sentences]
            fitting = fitting or [s for s in say.SHORT if word_count(s) <= count]
            longest = max(map(word_count, fitting))
            sentences.append(self.rng.choice([s for s in fitting if word_count(s) == longest]))
            count -= longest
        return sentences

    def solution(self) -> str:
        moves = self.solving.moves
        last_turn = max((i for i, m in enumerate(moves) if m.kind in ("correction", "backtrack")),
                        default=0)  # fmt: skip
        kept = [_capital(_sentence(m.text)) for m in moves[last_turn:] if m.kind != "reflection"]
        return "\n\n".join([*kept, f"The final answer is \\boxed{{{self.solving.answer}}}"])


def build_trace(messages: list[Any], sample: Any, target_tokens: int) -> tuple[str, str]:
    """Return (content, thought): a deterministic journey-learning trace for the request.

    The content is `target_tokens` words long, unless the moves alone are longer.
    """
    key = json.dumps([messages, sample], sort_keys=True, default=str).encode()
    rng = random.Random(hashlib.sha256(key).digest())  # noqa: S311 - reproducible text only
    user = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    writer = _Writer(parse_request(user), rng)
    count = len(writer.solving.moves)
    moves = [writer.move(i) for i in range(count)]
    pauses = [writer.pause(i) for i in range(count - 1)] + [""]  # the last leads to the check
    stock: list[list[str]] = [[] for _ in range(count)]  # recaps and re-checks after each move
    check = "Let me check the whole chain once more before writing it up."
    therefore = f"Therefore, the answer is {_as_math(writer.solving.answer)}."
    opening, solution = writer.opening(), writer.solution()
    fixed = [opening, *moves, *pauses, check, therefore, solution]
    room = target_tokens - TAGS - sum(map(word_count, fixed))
    # Later moves get more of the padding: by then there is more to recap and re-check.
    for index in itertools.cycle([i for i in range(count) for _ in range(i + 1)]):
        paragraph = writer.padding(index + 1)
        if word_count(paragraph) > room:
            break
        stock[index].append(paragraph)
        room -= word_count(paragraph)
    final = " ".join([check, *writer.exact(max(0, room)), therefore])
    body = [p for i in range(count) for p in (moves[i], *stock[i], pauses[i]) if p]
    thought = "\n\n".join([opening, *body, final])
    content = (
        f"<|begin_of_thought|>\n\n{thought}\n\n<|end_of_thought|>\n\n"
        f"<|begin_of_solution|>\n\n{solution}\n\n<|end_of_solution|>"
    )
    return content, thought


def journey_thought(user: str, sample: Any, words: int) -> str:
    """The thought of the trace ``build_trace`` writes for a request whose user message is
    ``user``: the moves it parses (see ``parse_request``) walked in order with recaps and
    re-checks, ``words`` words long unless the moves alone are longer."""
    solution = _Writer(parse_request(user), random.Random(0)).solution()  # noqa: S311 - no draw in it
    target = words + TAGS + word_count(solution)
    return build_trace([{"role": "user", "content": user}], sample, target)[1]
