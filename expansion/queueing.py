"""Queueing expansion jobs, exactly once per combination, and the jobs to send again or stop."""

import hashlib
import json

from django.conf import settings
from django.db import transaction

from annotator import roles
from annotator.models import Annotation

from .endpoints import endpoint_default
from .jobs.lifecycle import job_cancel, jobs_stalled
from .models import LLMEndpoint, PromptVersion, Trace
from .prompts import prompt_active


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
    from .tasks import expand_trace

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
                },
            )  # fmt: skip
            traces.append(trace)
            if is_new:
                created.append(trace.pk)
        transaction.on_commit(lambda: [expand_trace.delay(pk) for pk in created])
    return traces


def trace_cancel(*, trace_id: int) -> bool:
    return job_cancel(Trace, trace_id)


def traces_stalled(*, queued_after_seconds: int | None = None) -> list[int]:
    """Jobs to send again: running without a heartbeat, or queued for very long."""
    if queued_after_seconds is None:
        queued_after_seconds = settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS
    return jobs_stalled(Trace, queued_after_seconds=queued_after_seconds)
