"""Running one judge job through expansion's job engine: the judge kind's messages and what
makes its answer usable (valid JSON with one rating pair per step, on the scales)."""

from contextlib import suppress
from functools import partial

from expansion import llm
from expansion.jobs.engine import Call, Fail, Retry, Succeed, answer_unusable, backoff, job_run
from expansion.jobs.lifecycle import job_claim
from expansion.jobs.retrying import DATABASE_DOWN, db_retry

from ..models import JudgeJob, TraceStep
from .prompts import RESPONSE_FORMAT, InvalidJudgement, build_judge_messages, parse_judgement


def judge_run(*, job_id: int) -> None:
    """Run one judge job to a succeeded or failed job. Safe to call more than once."""
    job = job_claim(JudgeJob, job_id)
    if job is None:
        return  # finished, cancelled, or another worker is on it
    try:
        judge = db_retry(
            lambda: JudgeJob.objects.select_related("trace__annotation__problem", "prompt",
                                                    "endpoint").get(pk=job_id),
            what=f"reading judge job {job_id}",
        )  # fmt: skip
        texts = dict(TraceStep.objects.filter(pk__in=judge.step_ids).values_list("pk", "text"))
        steps = [texts.get(step_id, "") for step_id in judge.step_ids]
        endpoint = judge.endpoint
        messages = build_judge_messages(
            judge.prompt, problem_statement=judge.trace.annotation.problem.statement,
            record=judge.trace.record, steps=steps, json_schema=endpoint.supports_json_schema,
        )  # fmt: skip
        params = dict(judge.params)
        if endpoint.supports_json_schema:
            params["response_format"] = RESPONSE_FORMAT
        job_run(job, Call(endpoint, messages, params),
                on_answer=partial(_judged, judge, len(steps)))  # fmt: skip
    except DATABASE_DOWN:
        with suppress(*DATABASE_DOWN):
            job.give_back()
        raise


def _judged(judge: JudgeJob, steps: int, result: llm.Completion, attempt: int):
    """An answer that cannot be kept is asked for again, then fails as invalid_output with
    its text kept (the engine stores what was paid for): never a partial set of ratings."""
    unusable = answer_unusable(result, attempt=attempt, max_tokens=judge.params["max_tokens"])
    if unusable:
        return unusable
    try:
        ratings = parse_judgement(result.content, steps=steps)
    except InvalidJudgement as exc:
        message = f"{exc} (after {attempt} attempts; the last answer is kept)"
        return Retry(backoff(attempt, None), give_up=Fail("invalid_output", message))
    return Succeed({"ratings": ratings, **JudgeJob.findings(ratings), "error_kind": "",
                    "error_message": "",
                    "progress_tokens": result.completion_tokens or 0})  # fmt: skip
