"""Step-rated traces as process-supervision data: TRL's stepwise supervision (``prm``) and
PRM800K-like lines (``prm800k``).

A trace's steps are its standing steps in order. Whose ratings label them is ``labels``:
``human`` (reviewers), ``judge`` (the judge model's latest succeeded run) or
``human-else-judge`` (a person's rating where one exists, else the judge's). With several
reviewers, a step's rating is the lowest they gave (a step anyone found wrong is not
positive) and its tag the most serious one (invented, early_fix, off_record, faithful).
"""

from collections import defaultdict
from collections.abc import Iterator
from itertools import islice
from typing import NamedTuple

from django.db.models import QuerySet

from expansion.models import Trace

from ..models import StepRating, TraceStep
from . import records

FORMATS = ("prm", "prm800k")
LABELS = ("human", "judge", "human-else-judge")
NEUTRAL = ("negative", "positive")  # how a 0 counts in prm's true/false labels
SEVERITY = ("invented", "early_fix", "off_record", "faithful")


class Label(NamedTuple):
    rating: int | None
    faithfulness: str | None
    source: str  # human or judge


class StepRow(NamedTuple):
    number: int
    text: str
    label: Label | None


class PrmRow(NamedTuple):
    row: records.Row
    reference_answer: str
    steps: list[StepRow]

    # What the writer reads of every row, as of records.Row.
    @property
    def problem_key(self) -> str:
        return self.row.problem_key

    @property
    def prompt_version(self) -> str:
        return self.row.prompt_version

    @property
    def model(self) -> str:
        return self.row.model

    @property
    def endpoint(self) -> str:
        return self.row.endpoint

    @property
    def status(self) -> str:
        return self.row.status


def _combined(ratings: list[tuple[int | None, str]], source: str) -> Label | None:
    values = [rating for rating, _ in ratings if rating is not None]
    tags = {tag for _, tag in ratings if tag}
    if not values and not tags:
        return None
    tag = next((name for name in SEVERITY if name in tags), None)
    return Label(min(values) if values else None, tag, source)


def human_labels(step_ids: list[int]) -> dict[int, Label]:
    by_step: dict[int, list] = defaultdict(list)
    ratings = StepRating.objects.filter(step_id__in=step_ids).order_by("step_id", "rater_id")
    for step_id, rating, tag in ratings.values_list("step_id", "correctness", "faithfulness"):
        by_step[step_id].append((rating, tag))
    return {
        step: label for step, values in by_step.items() if (label := _combined(values, "human"))
    }


def judge_labels(step_ids: list[int]) -> dict[int, Label]:
    from ..judging.selectors import judge_step_labels  # the judge's latest succeeded run

    return {step: Label(rating, tag, "judge")
            for step, (rating, tag) in judge_step_labels(step_ids).items()}  # fmt: skip


def labels_for(step_ids: list[int], source: str) -> dict[int, Label]:
    if source == "human":
        return human_labels(step_ids)
    if source == "judge":
        return judge_labels(step_ids)
    return {**judge_labels(step_ids), **human_labels(step_ids)}  # a person's wins


def prm_rows(traces: QuerySet[Trace], *, labels: str) -> Iterator[PrmRow]:
    """records.rows, CHUNK traces at a time, each with its steps and their labels (three
    queries a chunk: steps, labels, reference answers)."""
    stream = records.rows(traces)
    while chunk := list(islice(stream, records.CHUNK)):
        ids = [row.pk for row in chunk]
        steps: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        standing = TraceStep.objects.filter(trace_id__in=ids, retired_at__isnull=True)
        for step_id, trace_id, number, text in standing.order_by("trace_id", "number").values_list(
            "pk", "trace_id", "number", "text"
        ):
            steps[trace_id].append((step_id, number, text))
        found = labels_for([s[0] for rows in steps.values() for s in rows], labels)
        answers = dict(
            Trace.objects.filter(pk__in=ids).values_list(
                "pk", "annotation__problem__reference_answer"
            )
        )
        for row in chunk:
            yield PrmRow(row, answers.get(row.pk, ""),
                         [StepRow(number, text, found.get(step_id))
                          for step_id, number, text in steps[row.pk]])  # fmt: skip


def labelled_prefix(steps: list[StepRow]) -> list[StepRow]:
    """The steps up to the first one without a correctness rating (PRM800K's raters stop at
    the first wrong step: what follows it is unrated)."""
    prefix = []
    for step in steps:
        if step.label is None or step.label.rating is None:
            break
        prefix.append(step)
    return prefix


def _metadata(item: PrmRow, *, labels: str, rated: int) -> dict:
    return {**records.metadata(item.row), "labels": labels, "steps": len(item.steps),
            "steps_labelled": rated}  # fmt: skip


def prm_record(item: PrmRow, *, labels: str, neutral: str) -> dict | None:
    """TRL's stepwise supervision: prompt, the labelled steps, a true/false label each;
    None when no step is labelled."""
    prefix = labelled_prefix(item.steps)
    if not prefix:
        return None
    positive = {1, 0} if neutral == "positive" else {1}
    return {
        "prompt": item.row.statement.strip(),
        "completions": [step.text for step in prefix],
        "labels": [step.label.rating in positive for step in prefix],
        "metadata": _metadata(item, labels=labels, rated=len(prefix)),
    }


def prm800k_record(item: PrmRow, *, labels: str) -> dict | None:
    """PRM800K-like: every step with its rating (-1/0/1, null unrated) and its faithfulness
    tag; finish_reason ``found_error`` when the ratings stop at a wrong step, ``solution``
    when every step is rated, else ``incomplete``. None when no step is rated."""
    prefix = labelled_prefix(item.steps)
    if not prefix and not any(step.label for step in item.steps):
        return None
    if len(prefix) == len(item.steps):
        finish = "solution"
    elif prefix and prefix[-1].label.rating == -1:
        finish = "found_error"
    else:
        finish = "incomplete"
    steps = [
        {"text": step.text, "rating": step.label.rating if step.label else None,
         "faithfulness": step.label.faithfulness if step.label else None,
         "source": step.label.source if step.label else None}
        for step in item.steps
    ]  # fmt: skip
    return {
        "problem": item.row.statement.strip(),
        "ground_truth_answer": item.reference_answer,
        "steps": steps,
        "finish_reason": finish,
        "metadata": _metadata(item, labels=labels, rated=sum(1 for s in item.steps if s.label)),
    }


def dataset_info(fmt: str, files: list[dict], name: str) -> dict:
    """Each file with its columns and their types. LLaMA-Factory has no stepwise-supervision
    formatting, so no ``formatting`` is claimed: these files are for `datasets` and TRL."""
    if fmt == "prm":
        columns = {"prompt": "string", "completions": "list[string]", "labels": "list[bool]",
                   "metadata": "struct"}  # fmt: skip
    else:
        columns = {"problem": "string", "ground_truth_answer": "string",
                   "steps": "list[struct{text, rating, faithfulness, source}]",
                   "finish_reason": "string", "metadata": "struct"}  # fmt: skip
    return {f"{name}_{f['split']}": {"file_name": f["name"], "columns": columns} for f in files}


def card_usage(fmt: str, file_name: str, labels: str, neutral: str) -> list[str]:
    lines = ["## Step labels", "",
             f"Labels from `{labels}` ratings. A step's rating is PRM800K's -1/0/+1; with "
             "several reviewers, the lowest they gave. Steps are the thought's blank-line "
             "separated paragraphs, up to the first unrated one."]  # fmt: skip
    if fmt == "prm":
        zero = "positive" if neutral == "positive" else "negative"
        lines += [
            f"A step is labelled true when rated +1; a 0 counts as {zero}.", "",
            "TRL's stepwise-supervision format, for `PRMTrainer`:", "", "```python",
            "from datasets import load_dataset", "",
            f'data = load_dataset("json", data_files="{file_name}", split="train")',
            "# trainer = PRMTrainer(model=model, args=PRMConfig(...), "
            "processing_class=tokenizer, train_dataset=data)", "```", "",
        ]  # fmt: skip
    else:
        lines += ["Each line holds every step with its rating (null: unrated), its "
                  "faithfulness tag to the human record, and who rated it.", ""]  # fmt: skip
    return lines
