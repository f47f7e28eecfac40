from celery import shared_task

from . import services


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
