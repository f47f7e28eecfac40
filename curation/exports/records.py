"""Turning reviewed traces into training records, one format at a time."""

import hashlib
import hmac
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet

from expansion.models import Trace
from expansion.prompts import SOLUTION_CLOSE, SOLUTION_OPEN, THOUGHT_CLOSE, THOUGHT_OPEN

from ..models import Decision, ReviewDecision, TraceReview

FORMATS = ("messages", "sharegpt", "alpaca", "dpo", "raw")
STYLES = ("think-tags", "still", "reasoning-field")
STATUSES = ("approved", "rejected", "pending", "any")
CHUNK = 2000


def pseudonym(kind: str, user_id: int | None) -> str | None:
    """A stable name that does not reveal the person (keyed on this deployment's secret)."""
    if user_id is None:
        return None
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{kind}:{user_id}".encode(), hashlib.sha256)
    return f"{kind}-{digest.hexdigest()[:12]}"


def export_queryset(
    *,
    status: str = "approved",
    since=None,
    until=None,
    source: str = "",
    subject: str = "",
    level: int | None = None,
    prompt: int | None = None,
    endpoint: str = "",
    model: str = "",
    min_tokens: int = 0,
    checks_passed: bool = False,
    include_simulated: bool = False,
) -> QuerySet[Trace]:
    """The traces an export covers, in a stable order (problem, then trace)."""
    traces = Trace.objects.filter(status=Trace.Status.SUCCEEDED)
    if status == "pending":
        traces = traces.filter(Q(review__isnull=True) | Q(review__status="pending"))
    elif status != "any":
        traces = traces.filter(review__status=status)
    if not include_simulated:
        traces = traces.filter(is_simulated=False)
    if since:
        traces = traces.filter(created_at__gte=since)
    if until:
        traces = traces.filter(created_at__lt=until)
    if source:
        traces = traces.filter(annotation__problem__source=source)
    if subject:
        traces = traces.filter(annotation__problem__subject=subject)
    if level is not None:
        traces = traces.filter(annotation__problem__level=level)
    if prompt:
        traces = traces.filter(prompt_id=prompt)
    if endpoint:
        by_id = endpoint.isdigit()
        traces = traces.filter(**{"endpoint_id" if by_id else "endpoint__name": endpoint})
    if model:
        traces = traces.filter(params__model=model)
    if min_tokens:
        traces = traces.filter(completion_tokens__gte=min_tokens)
    if checks_passed:
        traces = traces.filter(
            flag_answer_mismatch=False, flag_low_coverage=False, flag_too_short=False,
            flag_leakage=False, flag_truncated=False,
        )  # fmt: skip
    return traces.order_by("annotation__problem__source", "annotation__problem__external_id", "pk")


def iterate(traces: QuerySet[Trace]) -> Iterator[Trace]:
    """Stream with a server-side cursor on PostgreSQL, CHUNK rows at a time."""
    approvals = ReviewDecision.objects.filter(decision=Decision.APPROVE).order_by("created_at")
    rows = traces.select_related(
        "annotation__problem", "annotation__annotator", "prompt", "endpoint", "review"
    ).prefetch_related(Prefetch("decisions", queryset=approvals, to_attr="approvals"))
    return rows.iterator(chunk_size=CHUNK)


def texts(trace: Trace) -> tuple[str, str]:
    """Thought and solution as reviewed: a reviewer's edit wins over the model's text."""
    review: TraceReview | None = getattr(trace, "review", None)
    thought = (review.edited_thought if review else "") or trace.thought
    solution = (review.edited_solution if review else "") or trace.solution
    return thought.strip(), solution.strip()


def styled(thought: str, solution: str, style: str) -> str:
    if style == "think-tags":
        return f"<think>\n{thought}\n</think>\n\n{solution}"
    if style == "still":
        return (f"{THOUGHT_OPEN}\n\n{thought}\n\n{THOUGHT_CLOSE}\n\n"
                f"{SOLUTION_OPEN}\n\n{solution}\n\n{SOLUTION_CLOSE}")  # fmt: skip
    return solution  # reasoning-field: the thought goes in its own key


def metadata(trace: Trace) -> dict:
    problem = trace.annotation.problem
    review = getattr(trace, "review", None)
    return {
        "problem_source": problem.source,
        "problem_id": problem.external_id,
        "subject": problem.subject,
        "level": problem.level,
        "trace_id": trace.pk,
        "prompt_version": str(trace.prompt),
        "model": trace.params.get("model", ""),
        "completion_tokens": trace.completion_tokens,
        "review": review.status if review else "pending",
        "edited": bool(review and (review.edited_thought or review.edited_solution)),
        "simulated": trace.is_simulated,
        "annotator": pseudonym("annotator", trace.annotation.annotator_id),
        "reviewers": [
            pseudonym("reviewer", d.reviewer_id) for d in getattr(trace, "approvals", [])
        ],
    }


def record(trace: Trace, *, fmt: str, style: str, system: str) -> dict:
    """One training record (formats messages, sharegpt, alpaca) or the raw record."""
    if fmt == "raw":
        return raw_record(trace)
    thought, solution = texts(trace)
    question = trace.annotation.problem.statement.strip()
    answer = styled(thought, solution, style)
    reasoning = {"reasoning": thought} if style == "reasoning-field" else {}
    if fmt == "messages":
        messages = [{"role": "system", "content": system}] if system else []
        messages += [{"role": "user", "content": question},
                     {"role": "assistant", "content": answer, **reasoning}]  # fmt: skip
        return {"messages": messages, "metadata": metadata(trace)}
    if fmt == "sharegpt":
        conversations = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        return {"conversations": conversations, "system": system, **reasoning,
                "metadata": metadata(trace)}  # fmt: skip
    return {"instruction": question, "input": "", "output": answer, "system": system,
            **reasoning, "metadata": metadata(trace)}  # fmt: skip


def preference_record(chosen: Trace, rejected: Trace, *, style: str, system: str) -> dict:
    """A DPO pair: an approved and a rejected trace of the same problem."""

    def turn(trace: Trace) -> dict:
        return {"from": "gpt", "value": styled(*texts(trace), style)}

    return {
        "conversations": [{"from": "human", "value": chosen.annotation.problem.statement.strip()}],
        "chosen": turn(chosen),
        "rejected": turn(rejected),
        "system": system,
        "metadata": {
            **metadata(chosen),
            "rejected_trace_id": rejected.pk,
            "rejected_prompt_version": str(rejected.prompt),
        },  # fmt: skip
    }


def raw_record(trace: Trace) -> dict:
    """Every stored field of trace, annotation and problem; people pseudonymized."""
    annotation, problem = trace.annotation, trace.annotation.problem
    review = getattr(trace, "review", None)
    skip = {"annotation", "prompt", "endpoint", "requested_by", "run_id"}
    trace_fields = {
        field.attname: getattr(trace, field.attname)
        for field in Trace._meta.concrete_fields
        if field.name not in skip
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
