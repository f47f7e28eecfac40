"""Asking the judge to rate a trace's steps (once per thought, prompt, endpoint and
parameters), and a reviewer taking the judge's ratings as their own."""

import hashlib
import json
import logging

from django.db import IntegrityError, transaction
from django.utils.translation import gettext

from annotator import roles
from expansion.jobs.retrying import DATABASE_DOWN, db_retry
from expansion.models import LLMEndpoint, Trace
from expansion.services import endpoint_default

from ..models import JudgeJob, JudgePrompt, StepRating, TraceStep
from ..ratings import services as ratings
from ..ratings.steps import trace_steps_ensure
from .prompts import judge_prompt_active
from .selectors import judgement

logger = logging.getLogger(__name__)
JUDGE_MAX_TOKENS = 4096  # one short reason per step: far less than a trace


class JudgeRefused(Exception):
    """The judge cannot be asked for this trace; the message says why."""


def _params(endpoint: LLMEndpoint) -> dict:
    return {"model": endpoint.model, "temperature": 0.0,
            "max_tokens": min(endpoint.max_tokens, JUDGE_MAX_TOKENS)}  # fmt: skip


def _key(trace: Trace, thought_hash: str, prompt: JudgePrompt, endpoint, params) -> str:
    identity = ["judge", trace.pk, thought_hash, prompt.content_hash, endpoint.pk, params]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def judge_request(*, trace_id: int, requested_by=None, prompt: JudgePrompt | None = None,
                  endpoint: LLMEndpoint | None = None) -> tuple[JudgeJob, bool]:  # fmt: skip
    """Queue a judge job for the trace's current steps, once: asking again for the same
    thought, prompt version, endpoint and parameters gives the job already made. Returns
    (job, created)."""
    trace = Trace.objects.select_related("annotation").get(pk=trace_id)
    if requested_by is not None:
        roles.refuse_own_annotation(requested_by, annotator_id=trace.annotation.annotator_id,
                                    doing="ask the judge about a trace of")  # fmt: skip
    if trace.status != Trace.Status.SUCCEEDED:
        raise JudgeRefused(gettext("Only the steps of a succeeded trace can be judged."))
    split = trace_steps_ensure(trace)
    step_ids = list(TraceStep.objects.filter(trace=trace, retired_at__isnull=True)
                    .order_by("number").values_list("pk", flat=True))  # fmt: skip
    if not step_ids:
        raise JudgeRefused(gettext("The trace has no steps to judge."))
    prompt = prompt or judge_prompt_active()
    endpoint = endpoint or endpoint_default()
    params = _params(endpoint)
    key = _key(trace, split.thought_hash, prompt, endpoint, params)
    existing = JudgeJob.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            job = JudgeJob.objects.create(
                trace=trace, prompt=prompt, endpoint=endpoint, params=params, step_ids=step_ids,
                thought_hash=split.thought_hash, idempotency_key=key, requested_by=requested_by,
            )  # fmt: skip
    except IntegrityError:
        return JudgeJob.objects.get(idempotency_key=key), False
    transaction.on_commit(lambda: _send(job.pk))
    return job, True


def _send(job_id: int) -> None:
    from ..tasks import judge_steps

    try:
        judge_steps.delay(job_id)
    except Exception:  # the periodic requeue sends it again
        logger.warning("Could not send judge job %s to the broker", job_id, exc_info=True)


def judge_accept_all(*, trace_id: int, rater) -> int:
    """Take the judge's ratings as the rater's own for every step the rater has not rated
    yet (a step already rated is an override and stays); how many ratings were saved."""
    trace = Trace.objects.select_related("annotation").get(pk=trace_id)
    judged = judgement(trace)
    if judged is None:
        raise ratings.RatingRefused("The judge has not rated this trace's steps.")
    rated = set(StepRating.objects.filter(step__trace=trace, rater=rater)
                .values_list("step_id", flat=True))  # fmt: skip
    numbers = dict(TraceStep.objects.filter(pk__in=judged.by_step)
                   .values_list("pk", "number"))  # fmt: skip
    saved = 0
    for step_id, rating in judged.by_step.items():
        if step_id in rated or step_id not in numbers:
            continue
        values = ratings.RatingValues(rating["correctness"], rating["faithfulness"], "")
        try:
            ratings.step_rating_save(trace_id=trace.pk, number=numbers[step_id], rater=rater,
                                     values=values, version=0)  # fmt: skip
        except ratings.RatingConflict:
            continue  # rated meanwhile, in another tab: that rating stands
        saved += 1
    return saved


def judge_succeeded_trace(sender, trace_id: int, **kwargs) -> None:
    """Judge a trace once it succeeds, when the active judge prompt says so."""
    if JudgePrompt.objects.filter(is_active=True, after_expansion=True).exists():
        try:
            db_retry(lambda: judge_request(trace_id=trace_id), what=f"judging trace {trace_id}")
        except (*DATABASE_DOWN, JudgeRefused) as error:
            logger.warning("Trace %s was not sent to the judge: %s", trace_id, error)


def judge_jobs_resend() -> int:
    """Send every stalled judge job one more message (the rule of expansion's jobs)."""
    from django.conf import settings

    from expansion.jobs.lifecycle import jobs_mark_sent, jobs_stalled

    stalled = jobs_stalled(JudgeJob, first=settings.EXPANSION_RESEND_AFTER_SECONDS,
                           cap=settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS)  # fmt: skip
    if stalled:
        jobs_mark_sent(JudgeJob, stalled)
        for job_id in stalled:
            _send(job_id)
    return len(stalled)
