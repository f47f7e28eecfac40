from celery import shared_task
from celery.signals import worker_init

from annotator.answer_check import answers_match

from . import llm, rechecks, services


@worker_init.connect(dispatch_uid="expansion.warm_up")
def warm_up(**kwargs) -> None:
    """Before the worker takes its first job, load what every job needs and what is slow
    to load on first use: the openai SDK's API resources, and math-verify with sympy. A
    worker that starts with a full queue would otherwise make its first calls wait."""
    llm.warm_up()
    answers_match("1/2", "0.5")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def expand_trace(trace_id: int) -> None:
    """Run one expansion job; a redelivered message finds it taken or done and returns."""
    services.trace_run(trace_id=trace_id)


@shared_task(ignore_result=True)
def requeue_stalled_traces() -> int:
    """Send again the jobs whose worker died (no heartbeat) or whose message was lost."""
    stalled = services.traces_stalled()
    for trace_id in stalled:
        expand_trace.delay(trace_id)
    return len(stalled)


@shared_task(ignore_result=True)
def recheck_answers() -> int:
    """Compare again the answers a time bound left unchecked (a few per run)."""
    return rechecks.traces_recheck_answers()
