"""Queuing expansion jobs and running one job from start to a succeeded or failed trace."""

import hashlib
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotator.models import Annotation

from . import llm
from .checks import check_flags, trace_checks
from .limiter import LimitTimeout, endpoint_slot, limiter
from .models import LLMEndpoint, PromptVersion, Trace
from .parsing import split_thought
from .prompts import build_messages, prompt_active
from .signals import trace_succeeded

logger = logging.getLogger(__name__)

# A running job silent this long has lost its worker.
HEARTBEAT_STALE_SECONDS = int(getattr(settings, "EXPANSION_HEARTBEAT_STALE_SECONDS", 120))
# A live worker renews its jobs' heartbeats this often, whatever their requests are doing.
HEARTBEAT_EVERY = max(0.5, HEARTBEAT_STALE_SECONDS / 4)
PROGRESS_EVERY = 1.0  # seconds between progress saves while a response streams in
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0


class Cancelled(Exception):
    pass


def endpoint_default() -> LLMEndpoint:
    """Where submissions are expanded: the endpoint an admin marked as the default (if it is
    active), else the one from LLM_BASE_URL / LLM_MODEL, else the simulated one."""
    marked = LLMEndpoint.marked_default().first()
    if marked is not None:
        return marked
    if settings.LLM_BASE_URL and settings.LLM_MODEL:
        endpoint, _ = LLMEndpoint.objects.update_or_create(
            name="default",
            defaults={
                "base_url": settings.LLM_BASE_URL,
                "model": settings.LLM_MODEL,
                "api_key_env": settings.LLM_API_KEY_ENV,
                "is_simulated": False,
            },
        )
        return endpoint
    endpoint, _ = LLMEndpoint.objects.get_or_create(
        name="simulated",
        defaults={
            "base_url": settings.LLM_SIMULATOR_URL,
            "model": "simulated-journey",
            "is_simulated": True,
            "max_in_flight": 32,
        },
    )
    return endpoint


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


def _claim(trace_id: int) -> tuple[Trace, str] | None:
    """Take the job if it is queued, or running on a worker that stopped heartbeating."""
    now = timezone.now()
    run_id = uuid.uuid4().hex
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    taken = Trace.objects.filter(
        Q(status=Trace.Status.QUEUED) | Q(status=Trace.Status.RUNNING, heartbeat_at__lt=stale),
        pk=trace_id,
    ).update(status=Trace.Status.RUNNING, run_id=run_id, heartbeat_at=now, started_at=now)
    if not taken:
        return None
    trace = Trace.objects.select_related("annotation__problem", "prompt", "endpoint").get(
        pk=trace_id
    )
    return trace, run_id


def _owned(trace: Trace, run_id: str):
    return Trace.objects.filter(pk=trace.pk, run_id=run_id, status=Trace.Status.RUNNING)


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential with full jitter, but never sooner than the server asked."""
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))  # noqa: S311
    return max(delay, retry_after or 0)


def _finish(trace: Trace, run_id: str, **fields) -> bool:
    fields.setdefault("finished_at", timezone.now())
    return bool(_owned(trace, run_id).update(**fields))


def _fail(trace: Trace, run_id: str, kind: str, message: str, **fields) -> None:
    logger.warning("Trace %s failed (%s): %s", trace.pk, kind, message)
    _finish(trace, run_id, status=Trace.Status.FAILED, error_kind=kind, error_message=message,
            **fields)  # fmt: skip


class _Heartbeats:
    """The jobs this process is running, whose heartbeats one thread renews every
    HEARTBEAT_EVERY seconds: a request can wait minutes for its first token, or a retry sit
    out a long Retry-After, and its job must not look abandoned meanwhile (another worker
    would take it over and pay for a second answer)."""

    def __init__(self) -> None:
        self.running: dict[int, str] = {}  # trace id -> run id
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    @contextmanager
    def held(self, trace_id: int, run_id: str) -> Iterator[None]:
        with self.lock:
            self.running[trace_id] = run_id
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                self.running.pop(trace_id, None)

    def _beat(self) -> None:
        while True:
            time.sleep(HEARTBEAT_EVERY)
            with self.lock:
                running = list(self.running.items())
            if not running:
                continue
            owned = Q()
            for trace_id, run_id in running:
                owned |= Q(pk=trace_id, run_id=run_id)
            try:
                Trace.objects.filter(owned, status=Trace.Status.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            except Exception:  # a database blip must not end the heartbeats; next round
                logger.warning("Could not renew the heartbeats of running jobs", exc_info=True)
            finally:
                connection.close()  # this thread's own connection; none held between beats


_heartbeats = _Heartbeats()


def trace_run(*, trace_id: int) -> None:
    """Run one expansion job to a succeeded or failed trace. Safe to call more than once."""
    claimed = _claim(trace_id)
    if claimed is None:
        return  # finished, cancelled, or another worker is on it
    trace, run_id = claimed
    with _heartbeats.held(trace.pk, run_id):
        _trace_run(trace, run_id)


def _trace_run(trace: Trace, run_id: str) -> None:
    endpoint, prompt = trace.endpoint, trace.prompt
    messages = build_messages(
        prompt, problem_statement=trace.annotation.problem.statement, record=trace.record
    )
    params = dict(trace.params)
    _owned(trace, run_id).update(request={"messages": messages, **params})
    prompt_estimate = sum(len(m["content"]) for m in messages) // 3
    last_save = [0.0]

    def on_progress(content: str, reasoning: str) -> None:
        now = time.monotonic()
        if now - last_save[0] < PROGRESS_EVERY:
            return
        last_save[0] = now
        updated = _owned(trace, run_id).update(
            content=content, reasoning=reasoning, heartbeat_at=timezone.now(),
            progress_tokens=(len(content) + len(reasoning)) // 4,
        )  # fmt: skip
        if not updated:
            raise Cancelled()

    total_cost = Decimal(0)
    attempt = 0
    # Waiting for a slot, the job looks up now and then whether it was cancelled or taken over.
    slot_wait = max(0.5, min(10.0, HEARTBEAT_STALE_SECONDS / 4))
    while True:
        attempt += 1
        if not _owned(trace, run_id).update(attempts=attempt, heartbeat_at=timezone.now()):
            return  # cancelled, or taken over by another worker: never call twice
        try:
            booked = prompt_estimate + params["max_tokens"]  # at most; settled below
            with endpoint_slot(endpoint, tokens=booked, wait=slot_wait) as slot:
                result = llm.complete(endpoint, messages=messages, params=params,
                                      on_progress=on_progress,
                                      sample=trace.sample_index)  # fmt: skip
        except LimitTimeout:
            attempt -= 1  # waiting for a slot is not an attempt; keep the heartbeat fresh
            continue
        except Cancelled:
            return
        except llm.LLMError as error:
            if error.kind == "rate_limited":
                limiter().cool_down(endpoint, error.retry_after or _backoff(attempt, None))
            if not error.retryable or attempt >= settings.EXPANSION_MAX_ATTEMPTS:
                suffix = "" if not error.retryable else f" (gave up after {attempt} attempts)"
                _fail(trace, run_id, error.kind, str(error) + suffix)
                return
            time.sleep(_backoff(attempt, error.retry_after))
            continue
        if endpoint.tokens_per_minute and result.completion_tokens is not None:
            used = (result.prompt_tokens or 0) + result.completion_tokens
            limiter().settle(endpoint, slot, booked, used)  # the minute counts what was used
        cost = endpoint.cost(result.prompt_tokens or 0, result.completion_tokens or 0)
        total_cost += cost
        paid = {
            "response": result.raw, "content": result.content, "reasoning": result.reasoning,
            "finish_reason": result.finish_reason, "model_reported": result.model,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "latency_ms": result.latency_ms, "cost": total_cost, "attempts": attempt,
        }  # fmt: skip
        if result.finish_reason == "length":
            message = (
                f"The answer hit max_tokens ({params['max_tokens']}) and was cut off; "
                "raise max_tokens on the endpoint or re-expand."
            )
            _fail(trace, run_id, "truncated", message, flag_truncated=True, **paid)
            return
        if not result.content.strip():  # thinking alone, without an answer, is no trace
            if attempt >= settings.EXPANSION_MAX_ATTEMPTS:
                message = f"The endpoint answered with no text {attempt} times."
                if result.reasoning.strip():
                    message = (f"The endpoint answered with reasoning but no answer text "
                               f"{attempt} times.")  # fmt: skip
                _fail(trace, run_id, "empty", message, **paid)
                return
            time.sleep(_backoff(attempt, None))  # an overloaded server, as often as not
            continue
        _succeed(trace, run_id, result, paid)
        return


def _succeed(trace: Trace, run_id: str, result: llm.Completion, paid: dict) -> None:
    split = split_thought(result.content, result.reasoning)
    thought, solution = split if split else (result.reasoning or result.content, "")
    completion_tokens = result.completion_tokens or (len(result.content) // 4)
    checks = trace_checks(
        thought=thought, solution=solution, split_ok=split is not None,
        finish_reason=result.finish_reason, completion_tokens=completion_tokens,
        target_min=trace.prompt.target_tokens_min, target_max=trace.prompt.target_tokens_max,
        reference_answer=trace.annotation.problem.reference_answer,
        annotator_answer=trace.record.get("final_answer", ""), steps=trace.record["steps"],
    )  # fmt: skip
    finished = _finish(trace, run_id, status=Trace.Status.SUCCEEDED, thought=thought,
                       solution=solution, checks=checks, error_kind="", error_message="",
                       progress_tokens=completion_tokens, **check_flags(checks),
                       **paid)  # fmt: skip
    if finished:
        trace_succeeded.send_robust(sender=Trace, trace_id=trace.pk)


def trace_cancel(*, trace_id: int) -> bool:
    return bool(
        Trace.objects.filter(
            pk=trace_id, status__in=[Trace.Status.QUEUED, Trace.Status.RUNNING]
        ).update(status=Trace.Status.CANCELLED, finished_at=timezone.now())
    )


def traces_stalled(*, queued_after_seconds: int | None = None) -> list[int]:
    """Jobs to send again: running without a heartbeat, or queued for very long."""
    if queued_after_seconds is None:
        queued_after_seconds = settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS
    now = timezone.now()
    stale = now - timezone.timedelta(seconds=HEARTBEAT_STALE_SECONDS)
    old = now - timezone.timedelta(seconds=queued_after_seconds)
    return list(
        Trace.objects.filter(
            Q(status=Trace.Status.RUNNING, heartbeat_at__lt=stale)
            | Q(status=Trace.Status.QUEUED, created_at__lt=old)
        ).values_list("pk", flat=True)[:1000]
    )
