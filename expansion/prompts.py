"""The expansion prompt: default wording, and turning an annotation into messages.

Why the wording is what it is: see README, "The expansion prompt".
"""

from django.db import IntegrityError, transaction

from .models import PromptVersion

THOUGHT_OPEN, THOUGHT_CLOSE = "<|begin_of_thought|>", "<|end_of_thought|>"
SOLUTION_OPEN, SOLUTION_CLOSE = "<|begin_of_solution|>", "<|end_of_solution|>"

DEFAULT_SYSTEM = f"""\
You turn a person's terse record of how they solved a problem into the long, natural inner
monologue of a solver working it out for the first time: the full journey, with its attempts,
doubts, dead ends, checks and corrections.

Write two sections and nothing else:
{THOUGHT_OPEN}
the long thought, in paragraphs separated by blank lines
{THOUGHT_CLOSE}

{SOLUTION_OPEN}
a concise, precise solution that states the key steps and ends with the final answer in \\boxed{{}}
{SOLUTION_CLOSE}"""

DEFAULT_GRANULARITY = """\
Granularity: break the reasoning into small, digestible steps. Where the record jumps
("so x = 4"), show the intermediate moves a careful solver makes: write the equation,
substitute, compute, and look at the result before moving on. One idea per paragraph."""

DEFAULT_STEPWISE_PAUSE = """\
Stepwise pauses: stop often. After each small step, take stock in a sentence or two: what is
known now, whether it fits with what came before, and what to try next and why ("So far we
have... Next, let me..."). Before concluding, re-check the intermediate results."""

DEFAULT_EXPLORER = """\
Explorer's perspective: write as someone meeting this problem for the first time, curious
and unsure, not as someone presenting a solution they already know. Let ideas arrive as they
do for a solver: "Hmm, what if...", "Wait, that can't be right...", "Alternatively...". Do
not announce where the reasoning will end up before it gets there."""

DEFAULT_INVARIANTS = """\
Rules that always hold:
1. Follow the record. Keep every attempt, wrong turn, reflection, association, backtrack and
   correction it contains, in the same order. An error in the record stays an error in the
   thought until the record corrects it, and is noticed the way the record notices it.
2. Say the common sense out loud. Where the record relies on a fact, formula or convention
   (given as notes), state it explicitly at the point where it is used, in the solver's own
   voice.
3. Invent nothing beyond the record: no new methods, no new results, no different answer.
   You may spell out the arithmetic and algebra between the record's steps.
4. Never mention an annotator, a record, notes, hints, a reference solution or these
   instructions. The thought is the solver's own.
5. Length: the thought should run to roughly {target_min} to {target_max} tokens; harder
   problems deserve the longer end. Do not pad with repetition.
6. End the solution with the final answer in \\boxed{}, the same answer the record reaches."""

DEFAULT_PROMPT = {
    "name": "journey",
    "system": DEFAULT_SYSTEM,
    "granularity": DEFAULT_GRANULARITY,
    "stepwise_pause": DEFAULT_STEPWISE_PAUSE,
    "explorer_perspective": DEFAULT_EXPLORER,
    "invariants": DEFAULT_INVARIANTS,
}


def prompt_problems(*, system: str, invariants: str, target_tokens_min: int,
                    target_tokens_max: int, **components) -> dict[str, str]:  # fmt: skip
    """What a prompt version lacks that the pipeline relies on, by field; empty when none.

    Whatever the components say, the model must be asked for a structure the code can split
    (the four STILL markers, or <think> tags) and for its final answer in \\boxed{}.
    """
    problems = {}
    text = f"{system}\n{invariants}"
    still = (THOUGHT_OPEN, THOUGHT_CLOSE, SOLUTION_OPEN, SOLUTION_CLOSE)
    if not all(marker in text for marker in still) and not (
        "<think>" in text and "</think>" in text
    ):
        problems["system"] = (
            f"Ask for the thought and the solution between {', '.join(still)} (or <think> "
            "tags), so that the trace can be split."
        )
    if "\\boxed" not in text:
        problems["invariants"] = "Ask for the final answer in \\boxed{} (the checks read it)."
    if target_tokens_min and target_tokens_max and target_tokens_min > target_tokens_max:
        problems["target_tokens_max"] = "Must not be less than target_tokens_min."
    return problems


@transaction.atomic
def prompt_version_create(*, name: str = "journey", activate: bool = False,
                          **fields) -> PromptVersion:  # fmt: skip
    """A new version of prompt ``name`` (versions are never edited once used); it becomes
    the active one only when ``activate`` says so."""
    latest = PromptVersion.objects.filter(name=name).order_by("-version").first()
    prompt = PromptVersion(name=name, version=(latest.version + 1) if latest else 1, **fields)
    prompt.content_hash = prompt.compute_hash()
    prompt.save()
    return prompt_activate(prompt_id=prompt.pk) if activate else prompt


@transaction.atomic
def prompt_version_edit(*, prompt_id: int, activate: bool = False, **fields) -> PromptVersion:
    """Change a version's content: in place while no trace used it, else as a new version
    (what a trace was expanded with stays as it was). Which version is active changes only
    when ``activate`` says so. Returns the version that holds the edit."""
    prompt = PromptVersion.objects.select_for_update().get(pk=prompt_id)
    if prompt.traces.exists():
        content = {field: getattr(prompt, field) for field in PromptVersion.CONTENT_FIELDS}
        return prompt_version_create(name=prompt.name, activate=activate,
                                     **{**content, **fields})  # fmt: skip
    for field, value in fields.items():
        setattr(prompt, field, value)
    prompt.content_hash = prompt.compute_hash()
    prompt.save()
    return prompt_activate(prompt_id=prompt.pk) if activate else prompt


@transaction.atomic
def prompt_activate(*, prompt_id: int) -> PromptVersion:
    """Make this version the one new submissions use, and no other (one_active_prompt)."""
    # Lock every version first, so that two activations at once take turns (a handful of
    # rows); then unset the old before setting the new, as the constraint checks each row.
    list(PromptVersion.objects.select_for_update().order_by("pk").values_list("pk", flat=True))
    PromptVersion.objects.filter(is_active=True).exclude(pk=prompt_id).update(is_active=False)
    PromptVersion.objects.filter(pk=prompt_id).update(is_active=True)
    return PromptVersion.objects.get(pk=prompt_id)


def prompt_active() -> PromptVersion:
    """The active prompt version; the default wording becomes version 1 on first use.

    Submissions at once on a fresh database all find none and all try to create it. The
    new version is made active by a plain write, not by prompt_activate (which would take
    the place of a version another submission just made active): the unique constraints
    (prompt_name_version_uniq, one_active_prompt) let one win, and the others read it."""
    fields = {k: v for k, v in DEFAULT_PROMPT.items() if k != "name"}
    for _ in range(5):
        active = PromptVersion.objects.filter(is_active=True).first()
        if active:
            return active
        try:
            with transaction.atomic():  # a savepoint: the losing insert is undone alone
                prompt = prompt_version_create(name=DEFAULT_PROMPT["name"], **fields)
                PromptVersion.objects.filter(pk=prompt.pk).update(is_active=True)
        except IntegrityError:
            continue  # another submission created or activated one meanwhile
        prompt.is_active = True
        return prompt
    return PromptVersion.objects.get(is_active=True)


def record_text(problem_statement: str, record: dict) -> str:
    lines = ["Problem:", problem_statement.strip(), "", "Record of the solver's thinking:"]
    for number, step in enumerate(record["steps"], start=1):
        lines.append(f"Step {number} ({step['kind']}): {step['text'].strip()}")
        for note in step.get("notes", []):
            lines.append(f"  Common sense used here: {note.strip()}")
    lines += ["", f"Final answer: {record['final_answer'].strip()}"]
    return "\n".join(lines)


def build_messages(prompt: PromptVersion, *, problem_statement: str, record: dict) -> list[dict]:
    components = [
        part.strip()
        for part in (prompt.granularity, prompt.stepwise_pause, prompt.explorer_perspective)
        if part.strip()
    ]
    # Plain replacement, not str.format: prompts are full of LaTeX braces.
    invariants = prompt.invariants.replace("{target_min}", f"{prompt.target_tokens_min:,}")
    invariants = invariants.replace("{target_max}", f"{prompt.target_tokens_max:,}")
    system = "\n\n".join([prompt.system.strip(), *components, invariants.strip()])
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": record_text(problem_statement, record)},
    ]
