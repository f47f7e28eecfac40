"""The solve prompt a policy model is sampled with: its default wording, its versions
(immutable once a campaign used one), what a version lacks, and its messages."""

import hashlib
import json

from django.db import IntegrityError, transaction

from ..models import SolvePrompt
from ..prompts import SOLUTION_CLOSE, SOLUTION_OPEN, THOUGHT_CLOSE, THOUGHT_OPEN

PROBLEM = "{problem}"

DEFAULT_SYSTEM = """\
You are a careful mathematician solving a problem for the first time. Before answering,
think it through at length: analyse the problem, try an approach, check intermediate
results, reflect on what went wrong, backtrack and try again when needed. Casual markers
such as "Hmm", "Wait, let me check" and "Alternatively" are welcome in the thought."""

DEFAULT_INSTRUCTIONS = """\
Solve the following problem. Write your long thought inside <think> ... </think>, then a
concise, precise solution that ends with the final answer in \\boxed{}.

Problem:
{problem}"""

DEFAULT_PROMPT = {
    "name": "solve",
    "system": DEFAULT_SYSTEM,
    "instructions": DEFAULT_INSTRUCTIONS,
    "thought_format": SolvePrompt.ThoughtFormat.THINK.value,
}

# What a prompt must name so that the thought format's split finds the thought.
FORMAT_MARKERS = {
    SolvePrompt.ThoughtFormat.THINK: ("<think>", "</think>"),
    SolvePrompt.ThoughtFormat.STILL: (THOUGHT_OPEN, THOUGHT_CLOSE, SOLUTION_OPEN, SOLUTION_CLOSE),
}


def content_hash(content: dict) -> str:
    """The hash of a version's content fields (``SolvePrompt.compute_hash``; the data
    migration, which has no model methods, calls this)."""
    fields = {field: content[field] for field in SolvePrompt.CONTENT_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def solve_prompt_problems(prompt: SolvePrompt) -> dict[str, str]:
    """What a version lacks that sampling relies on, by field; empty when none."""
    problems = {}
    text = f"{prompt.system}\n{prompt.instructions}"
    if PROBLEM not in prompt.instructions:
        problems["instructions"] = "Put {problem} where the problem statement goes."
    if "\\boxed" not in text:
        problems["instructions"] = (
            problems.get("instructions", "") + " Ask for the final answer in \\boxed{} "
            "(the verification reads it)."
        ).strip()
    markers = FORMAT_MARKERS.get(prompt.thought_format)
    if markers is None:
        problems["thought_format"] = f"Choose one of {', '.join(FORMAT_MARKERS)}."
    elif not all(marker in text for marker in markers):
        problems["thought_format"] = (
            f"Ask for the thought between {', '.join(markers)}, as the thought format "
            f"{prompt.thought_format!r} splits it."
        )
    return problems


@transaction.atomic
def solve_prompt_create(
    *, name: str = "solve", system: str, instructions: str, thought_format: str = "think"
) -> SolvePrompt:
    """A new version of solve prompt ``name``, numbered after its latest."""
    latest = SolvePrompt.objects.filter(name=name).order_by("-version").first()
    prompt = SolvePrompt(
        name=name, version=(latest.version + 1) if latest else 1, system=system,
        instructions=instructions, thought_format=thought_format,
    )  # fmt: skip
    prompt.content_hash = prompt.compute_hash()
    prompt.save()
    return prompt


@transaction.atomic
def solve_prompt_edit(*, prompt_id: int, **fields) -> SolvePrompt:
    """Change a version's content: in place while no campaign used it, else as a new version
    (what a campaign sampled with stays as it was). Returns the version that holds the edit."""
    unknown = set(fields) - set(SolvePrompt.CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"Not content fields of a solve prompt: {', '.join(sorted(unknown))}")
    prompt = SolvePrompt.objects.select_for_update().get(pk=prompt_id)
    content = {field: getattr(prompt, field) for field in SolvePrompt.CONTENT_FIELDS}
    if {**content, **fields} == content:
        return prompt  # nothing changes: no new version
    if prompt.campaigns.exists():
        return solve_prompt_create(name=prompt.name, **{**content, **fields})
    for field, value in fields.items():
        setattr(prompt, field, value)
    prompt.content_hash = prompt.compute_hash()
    prompt.save()
    return prompt


def solve_prompt_default() -> SolvePrompt:
    """The default wording's version (data migration 0018 creates it; a flushed database
    gets it again on first use). Two callers at once: the unique version lets one create
    it and the other read it."""
    wanted = content_hash(DEFAULT_PROMPT)
    for _ in range(5):
        found = SolvePrompt.objects.filter(name=DEFAULT_PROMPT["name"], content_hash=wanted)
        prompt = found.order_by("version").first()
        if prompt:
            return prompt
        try:
            with transaction.atomic():  # a savepoint: the losing insert is undone alone
                return solve_prompt_create(**DEFAULT_PROMPT)
        except IntegrityError:
            continue
    return SolvePrompt.objects.get(name=DEFAULT_PROMPT["name"], content_hash=wanted)


def build_solve_messages(prompt: SolvePrompt, statement: str) -> list[dict]:
    """The system message (when the version has one) and the user message with the
    statement in place of ``{problem}`` (plain replacement: prompts are full of braces)."""
    user = prompt.instructions.replace(PROBLEM, statement.strip())
    messages = [{"role": "user", "content": user}]
    if prompt.system.strip():
        messages.insert(0, {"role": "system", "content": prompt.system.strip()})
    return messages
