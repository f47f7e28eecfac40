"""The shape of an annotation's steps: one place for the size and type rules."""

from typing import Any

from .models import STEP_KINDS

MAX_STEPS = 200
MAX_STEP_CHARS = 20_000
MAX_NOTES_PER_STEP = 30
MAX_NOTE_CHARS = 5_000
MAX_ANSWER_CHARS = 2_000


class StepsInvalid(ValueError):
    """Carries a list of messages, each naming the step and what is wrong with it."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


def clean_steps(raw: Any) -> list[dict]:
    """Normalise steps to ``[{"kind", "text", "notes": [...]}]`` or raise StepsInvalid."""
    if not isinstance(raw, list):
        raise StepsInvalid(["Steps must be a list."])
    if len(raw) > MAX_STEPS:
        raise StepsInvalid([f"At most {MAX_STEPS} steps; this record has {len(raw)}."])
    messages, steps = [], []
    for number, step in enumerate(raw, start=1):
        if not isinstance(step, dict):
            messages.append(f"Step {number}: must be an object with kind, text and notes.")
            continue
        kind, text, notes = step.get("kind"), step.get("text", ""), step.get("notes", [])
        if kind not in STEP_KINDS:
            messages.append(f"Step {number}: kind must be one of {', '.join(STEP_KINDS)}.")
        if not isinstance(text, str):
            messages.append(f"Step {number}: text must be a string.")
        elif len(text) > MAX_STEP_CHARS:
            messages.append(
                f"Step {number}: {len(text):,} characters; at most {MAX_STEP_CHARS:,} per step."
            )
        if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
            messages.append(f"Step {number}: notes must be a list of strings.")
        elif len(notes) > MAX_NOTES_PER_STEP:
            messages.append(f"Step {number}: at most {MAX_NOTES_PER_STEP} notes per step.")
        elif any(len(note) > MAX_NOTE_CHARS for note in notes):
            messages.append(f"Step {number}: a note is longer than {MAX_NOTE_CHARS:,} characters.")
        if not messages or not messages[-1].startswith(f"Step {number}:"):
            clean_notes = [note.strip() for note in notes if note.strip()]
            steps.append({"kind": kind, "text": text, "notes": clean_notes})
    if messages:
        raise StepsInvalid(messages)
    return steps
