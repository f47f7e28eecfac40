"""The simulator's answers to step-judge requests: a JSON rating per numbered trace step.

A judge request is recognised by its response_format (the ``step_ratings`` JSON schema) or,
for an endpoint without JSON-schema support, by its "[Step N]" blocks and the request for a
```json block. The answer is deterministic per request. Modes for tests: ``valid``,
``malformed`` (not JSON), ``short`` (one step too few), ``out_of_scale`` (a correctness of 2),
``unknown_tag`` (faithfulness ``mostly``).
"""

import hashlib
import json
import random
import re
from typing import Any

from .simulated_text import message_text

JUDGE_MODES = ("valid", "malformed", "short", "out_of_scale", "unknown_tag")
STEP = re.compile(r"^\[Step (\d+)\]\n(.*?)(?=\n\n\[Step \d+\]\n|\n\nRate each of |\Z)", re.S | re.M)


def is_judge_request(body: dict[str, Any]) -> bool:
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema == "step_ratings":
        return True
    user = _user_text(body.get("messages") or [])
    return "[Step 1]\n" in user and "```json block" in user


def _user_text(messages: list) -> str:
    return next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")


def _rating(text: str, rng: random.Random) -> dict:
    lowered = text.lower()
    if re.search(r"\bnot\b|\bwrong\b|\bno:", lowered):
        correctness, reason = -1, "This step states a result that does not hold."
    elif lowered.startswith(("wait", "hmm", "so far", "let me recap")):
        correctness, reason = 0, "A pause that recaps without moving forward."
    else:
        correctness, reason = 1, "The step follows from what came before."
    faithfulness = "invented" if rng.random() < 0.1 else "faithful"
    return {"correctness": correctness, "faithfulness": faithfulness, "reason": reason}


def build_judgement(body: dict[str, Any], mode: str) -> str:
    user = _user_text(body.get("messages") or [])
    steps = [text for _, text in STEP.findall(user)]
    rng = random.Random(hashlib.sha256(user.encode()).digest())  # noqa: S311
    ratings = [{"step": n, **_rating(text, rng)} for n, text in enumerate(steps, start=1)]
    if mode == "malformed":
        return "Here are my ratings: step 1 looks right, step 2 is wrong"
    if mode == "short":
        ratings = ratings[:-1]
    elif mode == "out_of_scale" and ratings:
        ratings[0]["correctness"] = 2
    elif mode == "unknown_tag" and ratings:
        ratings[0]["faithfulness"] = "mostly"
    answer = json.dumps({"steps": ratings})
    if body.get("response_format"):
        return answer
    return f"```json\n{answer}\n```"
