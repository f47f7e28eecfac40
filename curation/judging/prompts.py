"""The judge's prompt (immutable versions with a content hash), its messages, its answer's
JSON schema, and the one check every answer passes before its ratings are kept."""

import json
import re

from django.db import IntegrityError, transaction

from expansion.prompts import record_text

from ..models import Correctness, Faithfulness, JudgePrompt

DEFAULT_JUDGE_PROMPT = {
    "name": "step-judge",
    "system": """\
You are a strict grader of step-by-step reasoning. You receive a problem, a human solver's
record of how they solved it (numbered steps with their kinds and the common-sense notes they
used, and their final answer), and a long reasoning trace written from that record, split
into numbered steps. Rate every step of the trace, in order, and answer with JSON only:
{"steps": [{"step": 1, "correctness": 1, "faithfulness": "faithful", "reason": "..."}, ...]}
with exactly one entry per trace step.""",
    "instructions": """\
Two questions per step:
1. correctness, on PRM800K's scale: 1 if the step is right and moves the solution forward,
   0 if it is neutral or redundant (a recap, a pause), -1 if it is wrong. A wrong attempt is
   -1 even when the human record makes the same mistake on purpose.
2. faithfulness to the human record: "faithful" (the step says what the record says, in
   other words), "invented" (a fact, method or result the record does not contain),
   "early_fix" (it corrects an error of the record before the record corrects it),
   "off_record" (it wanders from the record: a different path or a different answer).
Give a short reason for each step (one sentence).""",
}

RESPONSE_SCHEMA = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "step": {"type": "integer"},
                    "correctness": {"type": "integer", "enum": Correctness.values},
                    "faithfulness": {"type": "string", "enum": Faithfulness.values},
                    "reason": {"type": "string"},
                },
                "required": ["step", "correctness", "faithfulness", "reason"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["steps"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "step_ratings", "strict": True, "schema": RESPONSE_SCHEMA},
}
REASON_MAX_CHARS = 2_000


class InvalidJudgement(ValueError):
    """The answer cannot be kept as it is; the message says why (for the job's error)."""


@transaction.atomic
def judge_prompt_create(*, name: str, system: str, instructions: str,
                        activate: bool = False) -> JudgePrompt:  # fmt: skip
    """A new version of the named judge prompt (versions are never changed)."""
    last = JudgePrompt.objects.select_for_update().filter(name=name).order_by("-version").first()
    prompt = JudgePrompt(name=name, version=(last.version + 1) if last else 1, system=system,
                         instructions=instructions)  # fmt: skip
    prompt.content_hash = prompt.compute_hash()
    prompt.save()
    if activate:
        JudgePrompt.objects.filter(is_active=True).exclude(pk=prompt.pk).update(is_active=False)
        JudgePrompt.objects.filter(pk=prompt.pk).update(is_active=True)
        prompt.is_active = True
    return prompt


def judge_prompt_active() -> JudgePrompt:
    """The active judge prompt; the default wording becomes version 1 on first use."""
    for _ in range(5):
        active = JudgePrompt.objects.filter(is_active=True).first()
        if active:
            return active
        try:
            with transaction.atomic():
                return judge_prompt_create(**DEFAULT_JUDGE_PROMPT, activate=True)
        except IntegrityError:
            continue  # made by another request meanwhile
    return JudgePrompt.objects.get(is_active=True)


def build_judge_messages(prompt: JudgePrompt, *, problem_statement: str, record: dict,
                         steps: list[str], json_schema: bool) -> list[dict]:  # fmt: skip
    numbered = "\n\n".join(f"[Step {n}]\n{text}" for n, text in enumerate(steps, start=1))
    ask = f"Rate each of the {len(steps)} trace steps."
    if not json_schema:
        ask += " Answer with one JSON object in a ```json block, nothing else."
    return [
        {"role": "system", "content": f"{prompt.system.strip()}\n\n{prompt.instructions.strip()}"},
        {"role": "user", "content": f"{record_text(problem_statement, record)}\n\n"
                                    f"Trace steps:\n\n{numbered}\n\n{ask}"},
    ]  # fmt: skip


FENCED = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def _json_of(content: str):
    text = content.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    fenced = FENCED.search(text)
    candidates = [fenced.group(1)] if fenced else []
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise InvalidJudgement("The answer is not valid JSON (no JSON object found in it).")


def parse_judgement(content: str, *, steps: int) -> list[dict]:
    """One {step, correctness, faithfulness, reason} per trace step, in order; or
    InvalidJudgement: never a partial set."""
    data = _json_of(content)
    items = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise InvalidJudgement('The answer has no "steps" list.')
    if len(items) != steps:
        raise InvalidJudgement(f"The answer rates {len(items)} steps; the trace has {steps}.")
    ratings = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidJudgement(f"Entry {index} is not an object.")
        if item.get("step") != index:
            raise InvalidJudgement(f"Entry {index} names step {item.get('step')!r}, not {index}.")
        correctness = item.get("correctness")
        if isinstance(correctness, bool) or correctness not in Correctness.values:
            raise InvalidJudgement(f"Step {index}: correctness {correctness!r} is not -1, 0 or 1.")
        faithfulness = item.get("faithfulness")
        if faithfulness not in Faithfulness.values:
            raise InvalidJudgement(f"Step {index}: unknown faithfulness tag {faithfulness!r}.")
        reason = item.get("reason", "")
        if not isinstance(reason, str):
            raise InvalidJudgement(f"Step {index}: the reason is not text.")
        ratings.append({"step": index, "correctness": correctness, "faithfulness": faithfulness,
                        "reason": reason.strip()[:REASON_MAX_CHARS]})  # fmt: skip
    return ratings
