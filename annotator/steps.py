"""The shape of an annotation's record: the one validator of its steps and final answer.

The editor page, the API and the services all call ``clean_steps`` and ``clean_final_answer``
(the API through ``api_annotations.StepsField``), so a bad step is refused with the same
message wherever it comes from.
"""

from typing import Any, TypedDict

from .models import STEP_KINDS

MAX_STEPS = 200
MAX_STEP_CHARS = 20_000
MAX_NOTES_PER_STEP = 30
MAX_NOTE_CHARS = 5_000
MAX_ANSWER_CHARS = 2_000


class Step(TypedDict):
    kind: str
    text: str
    notes: list[str]


class StepsInvalid(ValueError):
    """Carries a list of messages, each naming the step and what is wrong with it."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


def _kind_error(kind: Any) -> str | None:
    if kind in STEP_KINDS:
        return None
    allowed = f"kind must be one of {', '.join(STEP_KINDS)}"
    if isinstance(kind, str) and kind:
        return f'{allowed}; "{kind}" is not a valid choice.'
    return f"{allowed}."


def _step_errors(step: Any) -> list[str]:
    if not isinstance(step, dict):
        return ["must be an object with kind, text and notes."]
    text, notes = step.get("text", ""), step.get("notes", [])
    errors = [error for error in [_kind_error(step.get("kind"))] if error]
    if not isinstance(text, str):
        errors.append("text must be a string.")
    elif len(text) > MAX_STEP_CHARS:
        errors.append(f"{len(text):,} characters; at most {MAX_STEP_CHARS:,} per step.")
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        errors.append("notes must be a list of strings.")
    elif len(notes) > MAX_NOTES_PER_STEP:
        errors.append(f"at most {MAX_NOTES_PER_STEP} notes per step.")
    elif any(len(note) > MAX_NOTE_CHARS for note in notes):
        errors.append(f"a note is longer than {MAX_NOTE_CHARS:,} characters.")
    return errors


def clean_steps(raw: Any) -> list[Step]:
    """Normalise steps to ``[{"kind", "text", "notes": [...]}]`` or raise StepsInvalid."""
    if not isinstance(raw, list):
        raise StepsInvalid(["Steps must be a list."])
    if len(raw) > MAX_STEPS:
        raise StepsInvalid([f"At most {MAX_STEPS} steps; this record has {len(raw)}."])
    messages = [
        f"Step {number}: {error}"
        for number, step in enumerate(raw, start=1)
        for error in _step_errors(step)
    ]
    if messages:
        raise StepsInvalid(messages)
    return [
        Step(
            kind=step["kind"],
            text=step.get("text", ""),
            notes=[note.strip() for note in step.get("notes", []) if note.strip()],
        )
        for step in raw
    ]


def clean_final_answer(raw: Any) -> str:
    """The final answer as given, or StepsInvalid when it is not text or too long."""
    if not isinstance(raw, str):
        raise StepsInvalid(["The final answer must be text."])
    if len(raw) > MAX_ANSWER_CHARS:
        raise StepsInvalid([f"The final answer is longer than {MAX_ANSWER_CHARS:,} characters."])
    return raw
