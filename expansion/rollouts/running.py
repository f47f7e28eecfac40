"""Running one rollout sample on the job engine: the solve prompt's messages go out, the
whole answer is split and flagged, and a succeeded sample is verified and counted in its
problem's difficulty."""

import logging
from contextlib import suppress
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import llm
from ..checks import thought_repetitions
from ..jobs.engine import Call, Fail, Retry, Succeed, answer_unusable, job_run
from ..jobs.lifecycle import RunningJob, job_cancel, job_claim
from ..jobs.retrying import DATABASE_DOWN, connection_release, db_retry
from ..language import EN, language_of
from ..markers import marker_counts
from ..models import RolloutCampaign, RolloutSample
from ..parsing import last_boxed, split_thought
from .prompts import build_solve_messages
from .verifying import difficulty_recompute, sample_verify

logger = logging.getLogger(__name__)

RELATED = ("campaign__prompt", "problem", "endpoint")


def sample_run(*, sample_id: int) -> None:
    """Run one sample to a succeeded (and verified) or failed sample. Safe to call more
    than once: a sample already taken or finished is left alone."""
    try:
        _sample_run(sample_id)
    finally:
        connection_release()


def _sample_run(sample_id: int) -> None:
    job = job_claim(RolloutSample, sample_id)
    if job is None:
        return  # finished, cancelled, or another worker is on it
    try:
        sample = db_retry(
            lambda: RolloutSample.objects.select_related(*RELATED).get(pk=sample_id),
            what=f"reading rollout sample {sample_id}",
        )
        if _held_back(job, sample.campaign.state):
            return
        job_run(job, sample_call(sample), on_answer=partial(sample_answered, sample))
    except DATABASE_DOWN:
        with suppress(*DATABASE_DOWN):  # else the requeue finds it once its heartbeat is stale
            job.give_back()
        raise


def _held_back(job: RunningJob, state: str) -> bool:
    """A paused campaign's sample goes back to the queue (its resume sends it again); a
    cancelled one's is cancelled. Either way nothing is sent to the endpoint."""
    if state == RolloutCampaign.State.PAUSED:
        job.give_back()
        return True
    if state == RolloutCampaign.State.CANCELLED:
        job_cancel(RolloutSample, job.pk)
        return True
    return False


def sample_call(sample: RolloutSample) -> Call:
    messages = build_solve_messages(sample.campaign.prompt, sample.problem.statement)
    return Call(sample.endpoint, messages, dict(sample.params), sample=sample.sample_index)


def sample_answered(sample: RolloutSample, result: llm.Completion,
                    attempt: int) -> Succeed | Retry | Fail:  # fmt: skip
    """A whole answer is kept with its thought, solution, boxed answer and flags, then
    verified. An answer cut off at max_tokens is a sample too (the model ran out of room,
    which is what a campaign measures), flagged truncated; an empty one is asked again."""
    unusable = answer_unusable(result, attempt=attempt, max_tokens=sample.params["max_tokens"])
    if unusable and not (isinstance(unusable, Fail) and unusable.kind == "truncated"):
        return unusable
    thought_format = sample.campaign.prompt.thought_format
    split = split_thought(result.content, result.reasoning, thought_format=thought_format)
    whole = "\n\n".join(text for text in (result.reasoning, result.content) if text.strip())
    thought, solution = split if split else (whole, whole)
    answer = last_boxed(solution)
    markers = marker_counts(thought, language=language_of(thought) or EN)
    fields = {
        "thought": thought, "solution": solution, "answer": answer or "",
        "flag_truncated": result.finish_reason == "length",
        "flag_repetition": bool(thought_repetitions(thought)),
        "flag_format": split is None or not answer,
        "flag_no_reflection": sum(markers.values()) == 0,
        "error_kind": "", "error_message": "", "progress_tokens": result.completion_tokens or 0,
    }  # fmt: skip
    return Succeed(fields, then=partial(sample_verified, sample_id=sample.pk))


def sample_verified(*, sample_id: int) -> RolloutSample | None:
    """Verify a succeeded sample (math-verify bounded in time, in the comparison pool) and
    recompute its problem's difficulty in the campaign. None when it is not succeeded."""
    sample = (
        RolloutSample.objects.select_related(*RELATED)
        .filter(pk=sample_id, status=RolloutSample.Status.SUCCEEDED)
        .first()
    )
    if sample is None:
        return None
    fields = sample_verify(sample)
    # One transaction: a worker killed in between leaves the verdict pending, which the
    # catch-up verifies again, rather than a verdict its problem's figures never counted.
    with transaction.atomic():
        RolloutSample.objects.filter(pk=sample_id).update(**fields)
        difficulty_recompute(problem_id=sample.problem_id, campaign_id=sample.campaign_id)
    for name, value in fields.items():
        setattr(sample, name, value)
    return sample


def samples_verify_pending(*, older_than: float | None = None, limit: int = 200) -> int:
    """Verify the succeeded samples whose verification did not happen (the worker stopped,
    or the database went away, between the answer's save and its verdict); how many."""
    if older_than is None:
        older_than = settings.ROLLOUT_VERIFY_CATCH_UP_SECONDS
    before = timezone.now() - timezone.timedelta(seconds=older_than)
    pending = RolloutSample.objects.filter(
        status=RolloutSample.Status.SUCCEEDED, verdict=RolloutSample.Verdict.PENDING,
        finished_at__lt=before,
    ).order_by("pk").values_list("pk", flat=True)[:limit]  # fmt: skip
    done = 0
    for sample_id in list(pending):
        try:
            done += sample_verified(sample_id=sample_id) is not None
        except Exception:  # one sample that cannot be verified must not stop the others
            logger.exception("Could not verify rollout sample %s", sample_id)
    return done
