"""Turning reviewed traces into training records, one format at a time.

The training formats (messages, sharegpt, alpaca, dpo) read each trace as a Row of plain
values, only the columns their records need; the raw format reads model instances, since
it keeps every stored field.
"""

import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterator
from functools import lru_cache
from itertools import islice
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL

from annotator.selectors import contaminated
from expansion.models import Trace
from expansion.prompts import SOLUTION_CLOSE, SOLUTION_OPEN, THOUGHT_CLOSE, THOUGHT_OPEN

from ..filters import ExportFilterForm
from ..models import Decision, ReviewDecision
from ..selectors import traces_reviewed

FORMATS = ("messages", "sharegpt", "alpaca", "dpo", "raw", "prm", "prm800k")
STYLES = ("think-tags", "still", "reasoning-field")
STATUSES = ("approved", "rejected", "pending", "any")
CHUNK = 2000


def pseudonym(kind: str, user_id: int | None) -> str | None:
    """A stable name that does not reveal the person (keyed on PSEUDONYM_KEY)."""
    if user_id is None:
        return None
    return _pseudonym(settings.PSEUDONYM_KEY, kind, user_id)


@lru_cache(maxsize=4096)
def _pseudonym(secret: str, kind: str, user_id: int) -> str:
    digest = hmac.new(secret.encode(), f"{kind}:{user_id}".encode(), hashlib.sha256)
    return f"{kind}-{digest.hexdigest()[:12]}"


def export_queryset(*, decontaminate: bool = True, **filters) -> QuerySet[Trace]:
    """The traces an export covers, in a stable order (problem, then trace).

    ``filters`` are ExportFilterForm's (old names too: ``since``/``until`` are the days the
    traces were created), as strings or values; ValueError names a refused one. Traces of
    problems in a registered benchmark are left out unless it is in ``allow_contaminated``
    (or ``decontaminate`` is false: to count what that leaves out).
    """
    form = ExportFilterForm.bind(filters)
    if not form.is_valid():
        raise ValueError(" ".join(form.refusals()))
    values = form.filters()
    allowed = values.pop("allow_contaminated", [])
    status = values.pop("status", "approved")
    min_tokens = values.pop("min_tokens", 0)
    if values.pop("checks_passed", False):
        values["clear"] = list(Trace.FLAGS)
    if not values.pop("include_simulated", False):
        values["simulated"] = False
    review = "" if status == "any" else status
    traces = traces_reviewed(status=Trace.Status.SUCCEEDED, review=review, **values)
    if min_tokens:
        traces = traces.filter(completion_tokens__gte=min_tokens)
    if decontaminate:
        traces = traces.filter(~contaminated(OuterRef("annotation__problem"), besides=allowed))
    return traces.order_by("annotation__problem__source", "annotation__problem__external_id", "pk")


class Row(NamedTuple):
    """One trace as the training formats need it; ROW_COLUMNS reads it, reviewers aside."""

    pk: int
    thought: str
    solution: str
    params: dict
    completion_tokens: int | None
    is_simulated: bool
    statement: str
    source: str
    external_id: str
    subject: str
    level: int | None
    annotator_id: int
    prompt_name: str
    prompt_number: int
    endpoint: str
    review_status: str | None  # None: the trace has no review yet
    edited_thought: str | None
    edited_solution: str | None
    rank: int | None
    reviewers: list[int]  # who approved it, oldest decision first

    @property
    def problem_key(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def prompt_version(self) -> str:
        return f"{self.prompt_name} v{self.prompt_number}"  # as str(PromptVersion)

    @property
    def model(self) -> str:
        return self.params.get("model", "")

    @property
    def status(self) -> str:
        return "pending" if self.review_status is None else self.review_status


ROW_COLUMNS = (
    "pk", "thought", "solution", "params", "completion_tokens", "is_simulated",
    "annotation__problem__statement", "annotation__problem__source",
    "annotation__problem__external_id", "annotation__problem__subject",
    "annotation__problem__level", "annotation__annotator_id", "prompt__name", "prompt__version",
    "endpoint__name", "review__status", "review__edited_thought", "review__edited_solution",
    "review__rank",
)  # fmt: skip


# Trace columns the database computes from others (a search vector): not data to export.
DERIVED = tuple(field.name for field in Trace._meta.concrete_fields if field.generated)


class RawRow(NamedTuple):
    """One trace for the raw format: the model instance with its problem, prompt, review."""

    trace: Trace

    @property
    def problem_key(self) -> str:
        problem = self.trace.annotation.problem
        return f"{problem.source}:{problem.external_id}"

    @property
    def prompt_version(self) -> str:
        return str(self.trace.prompt)

    @property
    def model(self) -> str:
        return self.trace.params.get("model", "")

    @property
    def endpoint(self) -> str:
        return self.trace.endpoint.name


def iterate(traces: QuerySet[Trace], *, fmt: str) -> Iterator[Row | RawRow]:
    """Stream CHUNK traces at a time (a server-side cursor on PostgreSQL: call it inside
    transaction.atomic() so that the cursor is not held, i.e. copied, past a commit)."""
    return raw_rows(traces) if fmt == "raw" else rows(traces)


def rows(traces: QuerySet[Trace]) -> Iterator[Row]:
    """The values of CHUNK traces in one fetch, then their approvals in one query."""
    values = traces.values_list(*ROW_COLUMNS).iterator(chunk_size=CHUNK)
    while chunk := list(islice(values, CHUNK)):
        reviewers = approvers([value[0] for value in chunk])
        for value in chunk:
            yield Row(*value, reviewers.get(value[0], []))


def approvers(trace_ids: list[int]) -> dict[int, list[int]]:
    """Who approved each of these traces, oldest decision first, in one query."""
    # A subquery, not a join: the RawSQL below names trace_id unqualified.
    undone = ReviewDecision.objects.filter(undoes=OuterRef("pk"))
    decisions = ReviewDecision.objects.filter(~Exists(undone), decision=Decision.APPROVE)
    if connection.vendor == "postgresql":  # one array parameter: quicker than an IN of CHUNK
        among = RawSQL("trace_id = ANY(%s)", (trace_ids,), output_field=BooleanField())
        decisions = decisions.filter(among)
    else:
        decisions = decisions.filter(trace_id__in=trace_ids)
    pairs = decisions.order_by("created_at", "pk").values_list("trace_id", "reviewer_id")
    reviewers: dict[int, list[int]] = defaultdict(list)
    for trace_id, reviewer_id in pairs:
        reviewers[trace_id].append(reviewer_id)
    return reviewers


def raw_rows(traces: QuerySet[Trace]) -> Iterator[RawRow]:
    """Model instances, CHUNK at a time, with what raw_record reads of other tables."""
    related = traces.select_related("annotation__problem", "prompt", "endpoint", "review")
    if DERIVED:
        related = related.defer(*DERIVED)
    return map(RawRow, related.iterator(chunk_size=CHUNK))


def texts(row: Row) -> tuple[str, str]:
    """Thought and solution as reviewed: a reviewer's edit wins over the model's text."""
    thought = row.edited_thought or row.thought
    solution = row.edited_solution or row.solution
    return thought.strip(), solution.strip()


def styled(thought: str, solution: str, style: str) -> str:
    if style == "think-tags":
        return f"<think>\n{thought}\n</think>\n\n{solution}"
    if style == "still":
        return (f"{THOUGHT_OPEN}\n\n{thought}\n\n{THOUGHT_CLOSE}\n\n"
                f"{SOLUTION_OPEN}\n\n{solution}\n\n{SOLUTION_CLOSE}")  # fmt: skip
    return solution  # reasoning-field: the thought goes in its own key


def metadata(row: Row) -> dict:
    return {
        "problem_source": row.source,
        "problem_id": row.external_id,
        "subject": row.subject,
        "level": row.level,
        "trace_id": row.pk,
        "prompt_version": row.prompt_version,
        "model": row.model,
        "completion_tokens": row.completion_tokens,
        "review": row.status,
        "edited": bool(row.edited_thought or row.edited_solution),
        "simulated": row.is_simulated,
        "annotator": pseudonym("annotator", row.annotator_id),
        "reviewers": [pseudonym("reviewer", reviewer) for reviewer in row.reviewers],
    }


def record(row: Row | RawRow, *, fmt: str, style: str, system: str) -> dict:
    """One training record (formats messages, sharegpt, alpaca) or the raw record."""
    if isinstance(row, RawRow):
        return raw_record(row.trace)
    return training_record(row.statement, *texts(row), fmt=fmt, style=style, system=system,
                           metadata=metadata(row))  # fmt: skip


def training_record(statement: str, thought: str, solution: str, *, fmt: str, style: str,
                    system: str, metadata: dict) -> dict:  # fmt: skip
    """A problem and one answer to it as a record of fmt (messages, sharegpt, alpaca)."""
    question = statement.strip()
    answer = styled(thought, solution, style)
    reasoning = {"reasoning": thought} if style == "reasoning-field" else {}
    if fmt == "messages":
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": question},
                     {"role": "assistant", "content": answer, **reasoning}]  # fmt: skip
        return {"messages": messages, "metadata": metadata}
    if fmt == "sharegpt":
        conversations = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        return {"conversations": conversations, "system": system, **reasoning,
                "metadata": metadata}  # fmt: skip
    return {"instruction": question, "input": "", "output": answer, "system": system,
            **reasoning, "metadata": metadata}  # fmt: skip


PAIR_LAYOUTS = ("llama-factory", "trl")


def preference_record(chosen: Row, rejected: Row, *, style: str, system: str,
                      layout: str = "llama-factory") -> dict:  # fmt: skip
    """A DPO pair: an approved and a rejected trace of the same problem."""
    meta = {
        **metadata(chosen),
        "rejected_trace_id": rejected.pk,
        "rejected_prompt_version": rejected.prompt_version,
    }
    return pair_record(chosen.statement, styled(*texts(chosen), style),
                       styled(*texts(rejected), style), system=system, metadata=meta,
                       layout=layout)  # fmt: skip


def pair_record(statement: str, chosen: str, rejected: str, *, system: str, metadata: dict,
                layout: str = "llama-factory") -> dict:  # fmt: skip
    """A prompt with a chosen and a rejected answer: LLaMA-Factory's sharegpt ranking
    (``conversations``, ``chosen`` and ``rejected`` turns, ``system``) or TRL's
    conversational preference (``prompt``, ``chosen``, ``rejected`` as message lists)."""
    question = statement.strip()
    if layout == "trl":
        prompt = [{"role": "system", "content": system}] if system else []
        return {
            "prompt": [*prompt, {"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "metadata": metadata,
        }
    return {
        "conversations": [{"from": "human", "value": question}],
        "chosen": {"from": "gpt", "value": chosen},
        "rejected": {"from": "gpt", "value": rejected},
        "system": system,
        "metadata": metadata,
    }


def raw_record(trace: Trace) -> dict:
    """Every stored field of trace, annotation and problem; people pseudonymized."""
    annotation, problem = trace.annotation, trace.annotation.problem
    review = getattr(trace, "review", None)
    skip = {"annotation", "prompt", "endpoint", "requested_by", "run_id"}
    trace_fields = {
        field.attname: getattr(trace, field.attname)
        for field in Trace._meta.concrete_fields
        if field.name not in skip and field.name not in DERIVED
    }
    return {
        "trace": {
            **trace_fields,
            "prompt_version": str(trace.prompt),
            "endpoint": trace.endpoint.name,
            "requested_by": None,
        },  # fmt: skip
        "annotation": {
            "id": annotation.pk,
            "version": annotation.version,
            "status": annotation.status,
            "steps": annotation.steps,
            "final_answer": annotation.final_answer,
            "time_spent_seconds": annotation.time_spent_seconds,
            "answer_check": annotation.answer_check,
            "mismatch_confirmed": annotation.mismatch_confirmed,
            "annotator": pseudonym("annotator", annotation.annotator_id),
            "submitted_at": annotation.submitted_at,
        },  # fmt: skip
        "problem": {
            "source": problem.source,
            "external_id": problem.external_id,
            "statement": problem.statement,
            "reference_solution": problem.reference_solution,
            "reference_answer": problem.reference_answer,
            "subject": problem.subject,
            "level": problem.level,
            "metadata": problem.metadata,
        },  # fmt: skip
        "review": {
            "status": review.status if review else "pending",
            "edited_thought": review.edited_thought if review else "",
            "edited_solution": review.edited_solution if review else "",
            "rank": review.rank if review else None,
        },
    }
