"""Queueing expansion jobs, exactly once per combination, and the jobs to send again or stop."""

import hashlib
import json
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotator import roles
from annotator.models import Annotation

from .endpoints import endpoint_default
from .jobs.lifecycle import job_cancel, jobs_mark_sent, jobs_stalled
from .models import LLMEndpoint, PromptVersion, Trace
from .prompts import prompt_active

logger = logging.getLogger(__name__)


def _params(endpoint: LLMEndpoint, overrides: dict | None) -> dict:
    params = {
        "model": endpoint.model,
        "temperature": endpoint.temperature,
        "top_p": endpoint.top_p,
        "max_tokens": endpoint.max_tokens,
    }
    params.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return params


def idempotency_key(
    *,
    annotation: Annotation,
    prompt: PromptVersion,
    endpoint: LLMEndpoint,
    params: dict,
    sample: int,
) -> str:
    identity = [annotation.pk, annotation.version, prompt.content_hash, endpoint.pk, params, sample]
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def traces_request(
    *,
    annotation: Annotation,
    samples: int = 1,
    prompt: PromptVersion | None = None,
    endpoint: LLMEndpoint | None = None,
    overrides: dict | None = None,
    requested_by=None,
    extra: bool = False,
) -> list[Trace]:
    """Queue ``samples`` expansion jobs of the annotation's current version.

    The first samples of a combination are idempotent (a repeated submission signal queues
    nothing new); ``extra=True`` asks for further samples after the existing ones.
    """
    # Whoever asks for more must not be the annotator: the rule of review decisions too.
    roles.refuse_own_annotation(
        requested_by, annotator_id=annotation.annotator_id, doing="ask for more expansions of"
    )
    prompt = prompt or prompt_active()
    endpoint = endpoint or endpoint_default()
    params = _params(endpoint, overrides)
    record = {"steps": annotation.steps, "final_answer": annotation.final_answer}
    with transaction.atomic():
        first = 0
        if extra:
            first = Trace.objects.filter(
                annotation=annotation, annotation_version=annotation.version,
                prompt=prompt, endpoint=endpoint, params=params,
            ).count()  # fmt: skip
        traces, created = [], []
        for sample in range(first, first + samples):
            key = idempotency_key(
                annotation=annotation,
                prompt=prompt,
                endpoint=endpoint,
                params=params,
                sample=sample,
            )
            trace, is_new = Trace.objects.get_or_create(
                idempotency_key=key,
                defaults={
                    "annotation": annotation, "annotation_version": annotation.version,
                    "record": record, "prompt": prompt, "endpoint": endpoint, "params": params,
                    "sample_index": sample, "is_simulated": endpoint.is_simulated,
                    "requested_by": requested_by,
                    # Sent on commit; should that send fail, the requeue sends it again.
                    "sent_at": timezone.now(), "sends": 1,
                },
            )  # fmt: skip
            traces.append(trace)
            if is_new and not endpoint.use_batches:  # batch jobs wait for the poller
                created.append(trace.pk)
        transaction.on_commit(lambda: _send(created), robust=True)
    return traces


def _send(trace_ids: list[int]) -> None:
    """Send the jobs' messages. A broker that is down loses none of them: their rows say
    when they were sent, and the periodic requeue sends them again."""
    from .tasks import expand_trace

    for trace_id in trace_ids:
        try:
            expand_trace.delay(trace_id)
        except Exception:
            logger.warning("Could not send trace %s to the broker; the requeue will",
                           trace_id, exc_info=True)  # fmt: skip


def trace_cancel(*, trace_id: int) -> bool:
    return job_cancel(Trace, trace_id)


def traces_stalled() -> list[int]:
    """Jobs to send again: running without a heartbeat, or queued and due for another
    message (EXPANSION_RESEND_AFTER_SECONDS, doubling per message up to
    EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS)."""
    return jobs_stalled(Trace, first=settings.EXPANSION_RESEND_AFTER_SECONDS,
                        cap=settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS)  # fmt: skip


def traces_resend() -> int:
    """Send every stalled job one more message, recorded on its row; how many were sent.
    Jobs of endpoints that use batches are the batch poller's, never a streaming worker's."""
    stalled = traces_stalled()
    if stalled:
        in_batch = Q(status=Trace.Status.RUNNING, run_id__startswith="batch-")
        batched = Trace.objects.filter(Q(endpoint__use_batches=True) | in_batch, pk__in=stalled)
        left_out = set(batched.values_list("pk", flat=True))
        stalled = [pk for pk in stalled if pk not in left_out]
    if stalled:
        jobs_mark_sent(Trace, stalled)
        _send(stalled)
        logger.info("Sent %d stalled expansion jobs again", len(stalled))
    return len(stalled)


def traces_queue_missing(*, limit: int = 200) -> int:
    """Queue the first samples of submitted annotations that have fewer traces of their
    current version than EXPANSION_SAMPLES (their submission's signal failed, or its
    broker was down); how many traces were created. Idempotent, like the signal."""
    wanted = settings.EXPANSION_SAMPLES
    missing = (
        Annotation.objects.filter(status=Annotation.Status.SUBMITTED)
        .annotate(current=Count("traces", filter=Q(traces__annotation_version=F("version"))))
        .filter(current__lt=wanted)
        .select_related("problem")
        .order_by("submitted_at", "pk")[:limit]
    )
    queued = 0
    for annotation in missing:
        try:
            traces_request(annotation=annotation, samples=wanted)
        except Exception:  # one annotation that cannot be queued must not stop the others
            logger.exception("Could not queue the expansions of annotation %s", annotation.pk)
            continue
        now = Trace.objects.filter(annotation=annotation, annotation_version=annotation.version)
        queued += now.count() - annotation.current
        logger.warning("Queued the missing expansions of annotation %s", annotation.pk)
    return queued
