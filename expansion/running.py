"""Running one expansion job: the record's messages go out through the job engine, and a
whole answer becomes a split, checked trace."""

from contextlib import suppress
from functools import partial

from . import llm
from .checks import Norms, check_flags, trace_checks
from .jobs.engine import Call, Fail, Retry, Succeed, answer_unusable, job_run
from .jobs.lifecycle import job_claim
from .jobs.retrying import DATABASE_DOWN, connection_release, db_retry
from .models import Trace
from .norms import norms_for
from .parsing import split_thought
from .prompts import build_messages
from .signals import trace_succeeded


def trace_run(*, trace_id: int) -> None:
    """Run one expansion job to a succeeded or failed trace. Safe to call more than once."""
    try:
        _trace_run(trace_id)
    finally:
        # Back to the pool at once, whoever runs the job: a thread that ended holding its
        # connection would keep it from the pool for good.
        connection_release()


def _trace_run(trace_id: int) -> None:
    job = job_claim(Trace, trace_id)
    if job is None:
        return  # finished, cancelled, or another worker is on it
    try:
        trace = db_retry(
            lambda: Trace.objects.select_related("annotation__problem", "prompt", "endpoint")
            .get(pk=trace_id),
            what=f"reading trace {trace_id}",
        )  # fmt: skip
        messages = build_messages(
            trace.prompt, problem_statement=trace.annotation.problem.statement,
            record=trace.record,
        )  # fmt: skip
        call = Call(trace.endpoint, messages, dict(trace.params), sample=trace.sample_index)
        job_run(job, call, on_answer=partial(_trace_answered, trace))
    except DATABASE_DOWN:
        # The database stayed away longer than the retries: queue the job again rather than
        # leave it running until its heartbeat goes stale; the task retries itself.
        with suppress(*DATABASE_DOWN):  # else the requeue finds it once its heartbeat is stale
            job.give_back()
        raise


def _trace_answered(trace: Trace, result: llm.Completion, attempt: int) -> Succeed | Retry | Fail:
    unusable = answer_unusable(result, attempt=attempt, max_tokens=trace.params["max_tokens"])
    if unusable:
        return unusable
    split = split_thought(result.content, result.reasoning)
    thought, solution = split if split else (result.reasoning or result.content, "")
    completion_tokens = result.completion_tokens  # counted locally when not reported
    checks = trace_checks(
        thought=thought, solution=solution, split_ok=split is not None,
        finish_reason=result.finish_reason, completion_tokens=completion_tokens,
        tokens_estimated=result.usage_source != "provider",
        target_min=trace.prompt.target_tokens_min, target_max=trace.prompt.target_tokens_max,
        reference_answer=trace.annotation.problem.reference_answer,
        annotator_answer=trace.record.get("final_answer", ""), steps=trace.record["steps"],
    )  # fmt: skip
    fields = {"thought": thought, "solution": solution, "checks": checks, "error_kind": "",
              "error_message": "", "progress_tokens": completion_tokens or 0,
              **check_flags(checks, _norms(trace))}  # fmt: skip
    return Succeed(fields, then=partial(trace_succeeded.send_robust, sender=Trace,
                                        trace_id=trace.pk))  # fmt: skip


def _norms(trace: Trace) -> Norms:
    """The medians the trace's relative checks compare with. Without the database, none: the
    answer is kept (it was paid for) and the next norms refresh sets those two flags."""
    try:
        problem = trace.annotation.problem
        return norms_for(level=problem.level, prompt_id=trace.prompt_id, problem_id=problem.pk)
    except DATABASE_DOWN:
        return Norms()
