import logging

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings

from annotator.answer_check import answers_match
from annotator.services import annotations_recheck_answers

from . import llm, norms, rechecks, services
from .jobs.retrying import DATABASE_DOWN

logger = logging.getLogger(__name__)


@worker_init.connect(dispatch_uid="expansion.warm_up")
def warm_up(**kwargs) -> None:
    """Before the worker takes its first job, load what every job needs and what is slow
    to load on first use: the openai SDK's API resources, and math-verify with sympy. A
    worker that starts with a full queue would otherwise make its first calls wait."""
    llm.warm_up()
    answers_match("1/2", "0.5")


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=None)  # fmt: skip
def expand_trace(self, trace_id: int) -> None:
    """Run one expansion job; a redelivered message finds it taken or done and returns.
    When the database stays away longer than the job's own retries, the task is sent again
    in a few seconds (its message was already acknowledged)."""
    try:
        services.trace_run(trace_id=trace_id)
    except DATABASE_DOWN as error:
        countdown = settings.EXPANSION_DB_RETRY_SECONDS
        logger.warning("Trace %s: database unavailable (%s); the job runs again in %s s",
                       trace_id, error, countdown)  # fmt: skip
        raise self.retry(countdown=countdown) from error


@shared_task(ignore_result=True)
def requeue_stalled_traces() -> int:
    """Send again the jobs whose worker died (no heartbeat) or whose message was lost,
    once per stall and less often the longer they wait; how many were sent."""
    return services.traces_resend()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             max_retries=None)  # fmt: skip
def rollout_sample(self, sample_id: int) -> None:
    """Run one rollout sample; a redelivered message finds it taken or done and returns.
    When the database stays away longer than the job's own retries, the task is sent again
    in a few seconds (its message was already acknowledged)."""
    from .rollouts.running import sample_run

    try:
        sample_run(sample_id=sample_id)
    except DATABASE_DOWN as error:
        countdown = settings.EXPANSION_DB_RETRY_SECONDS
        logger.warning("Rollout sample %s: database unavailable (%s); it runs again in %s s",
                       sample_id, error, countdown)  # fmt: skip
        raise self.retry(countdown=countdown) from error


@shared_task(ignore_result=True)
def requeue_stalled_rollout_samples() -> int:
    """Send again the samples of active campaigns whose worker died or whose message was
    lost, verify the succeeded samples whose verification was cut short, and recompute the
    problem figures that missed a verdict; how many samples were sent."""
    from .rollouts.running import samples_verify_pending
    from .rollouts.services import samples_resend
    from .rollouts.verifying import difficulties_reconcile

    samples_verify_pending()
    difficulties_reconcile()
    return samples_resend()


@shared_task(ignore_result=True)
def queue_missing_expansions() -> int:
    """Queue the expansions a submission should have had but did not get (its signal
    failed); how many traces were queued."""
    return services.traces_queue_missing()


@shared_task(ignore_result=True)
def poll_batches() -> dict:
    """Send the queued jobs of endpoints that use batches, poll the live batches and ingest
    the ended ones (every LLM_BATCH_POLL_SECONDS)."""
    from .batches.flow import batches_tick

    return batches_tick()


@shared_task(ignore_result=True)
def recheck_answers() -> int:
    """Compare again the answers a time bound left unchecked (a few per run): traces' and
    annotations' own final answers; how many now have a result."""
    return rechecks.traces_recheck_answers() + annotations_recheck_answers()


@shared_task(ignore_result=True, expires=120)
def refresh_norms() -> dict:
    """Recompute the medians the relative checks use, and the flags that follow."""
    return norms.norms_refresh()
