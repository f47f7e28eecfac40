"""A batch from its queued jobs to their results: submit, poll, ingest, salvage."""

import json
import logging
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from .. import llm, usage
from ..jobs.engine import Fail, Retry, Succeed
from ..jobs.lifecycle import RunningJob
from ..models import LLMBatch, LLMEndpoint
from . import client
from .kinds import BatchKind, batch_kinds

logger = logging.getLogger(__name__)

METADATA_KEY = "journey_batch"  # the provider's batch names ours, to be found again
# A batch still preparing after this long lost its worker between upload and create.
PREPARING_STALE = timedelta(minutes=10)
# What a batch that ended without answering a request says of it.
# A poller holds a batch this long, renewed while it ingests; a killed poller's batch is
# taken by the next round once it has expired.
LEASE = timedelta(seconds=settings.LLM_BATCH_LEASE_SECONDS)
INGEST_CHUNK = 200  # jobs read at once while ingesting
NOT_ANSWERED = {"expired": "expired", "cancelled": "was cancelled", "failed": "failed"}


def batches_tick() -> dict[str, int]:
    """The beat task's round: send the queued jobs of batch endpoints, poll the live
    batches, ingest the ended ones. Safe to run twice at once or again after a kill."""
    submitted = batches_submit_queued()
    polled = skipped = 0
    for batch in LLMBatch.objects.filter(ingested_at__isnull=True).select_related("endpoint"):
        if not batch_lease(batch):
            skipped += 1  # another worker is polling it
            continue
        try:
            batch_poll(batch)
        except Exception:  # one batch that cannot be read must not stop the others
            logger.exception("Could not poll batch %s", batch.pk)
        finally:
            batch_release(batch)
        polled += 1
    return {"submitted": len(submitted), "polled": polled, "skipped": skipped}


def batch_lease(batch: LLMBatch) -> bool:
    """Take the batch for this poller unless another holds an unexpired lease on it.

    A compare-and-set on ``leased_until`` (one UPDATE, the same on PostgreSQL and SQLite,
    and no transaction held open across the provider's HTTP calls): of two rounds that
    reach the batch at once, one polls it and the other passes it over."""
    now = timezone.now()
    until = now + LEASE
    free = Q(leased_until__isnull=True) | Q(leased_until__lt=now)
    taken = LLMBatch.objects.filter(free, pk=batch.pk, ingested_at__isnull=True).update(
        leased_until=until
    )
    if taken:
        batch.leased_until = until  # the batch's saves below write it back unchanged
    return bool(taken)


def batch_lease_renew(batch: LLMBatch) -> None:
    """Keep the lease while a long ingestion goes on."""
    until = timezone.now() + LEASE
    if LLMBatch.objects.filter(pk=batch.pk, leased_until=batch.leased_until).update(
        leased_until=until
    ):
        batch.leased_until = until


def batch_release(batch: LLMBatch) -> None:
    """Give the lease back, if it is still this poller's."""
    LLMBatch.objects.filter(pk=batch.pk, leased_until=batch.leased_until).update(leased_until=None)
    batch.leased_until = None


def batches_submit_queued() -> list[LLMBatch]:
    """One batch per endpoint and job kind with queued jobs on an endpoint using batches."""
    sent = []
    for kind in batch_kinds().values():
        queued = kind.model.objects.filter(kind.sendable, status=kind.model.Status.QUEUED,
                                           endpoint__use_batches=True)  # fmt: skip
        for endpoint_id in queued.values_list("endpoint", flat=True).distinct().order_by():
            try:
                batch = batch_submit(kind, LLMEndpoint.objects.get(pk=endpoint_id))
            except Exception:  # e.g. the database went away; the next round tries again
                logger.exception("Could not send the queued %s jobs of endpoint %s",
                                 kind.label, endpoint_id)  # fmt: skip
                continue
            if batch is not None:
                sent.append(batch)
    return sent


def batch_submit(kind: BatchKind, endpoint: LLMEndpoint) -> LLMBatch | None:
    """Claim the endpoint's queued jobs of this kind into a new batch and send it."""
    model = kind.model
    pks = list(
        model.objects.filter(kind.sendable, status=model.Status.QUEUED, endpoint=endpoint)
        .order_by("pk")
        .values_list("pk", flat=True)[: settings.LLM_BATCH_MAX_REQUESTS]
    )
    if not pks:
        return None
    batch = LLMBatch.objects.create(endpoint=endpoint, kind=kind.label)
    now = timezone.now()
    # The claim: a job a streaming worker took meanwhile is not queued any more.
    claimed = model.objects.filter(pk__in=pks, status=model.Status.QUEUED).update(
        status=model.Status.RUNNING, run_id=batch.run_id, batch=batch, heartbeat_at=now,
        started_at=now, attempts=F("attempts") + 1,
    )  # fmt: skip
    if not claimed:
        batch.delete()
        return None
    jobs = list(_owned(kind, batch).select_related(*kind.related).order_by("pk"))
    lines = []
    for job in jobs:
        call = kind.call(job)
        job.request = {"messages": call.messages, **call.params}
        body = dict(job.request)
        if endpoint.is_simulated and call.sample is not None:
            # The simulator's stand-in for the X-Journey-Sample header of a streamed call.
            body["metadata"] = {"sample_index": str(call.sample)}
        lines.append({"custom_id": job.idempotency_key, "method": "POST",
                      "url": client.CHAT_URL, "body": body})  # fmt: skip
    model.objects.bulk_update(jobs, ["request"], batch_size=500)
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    batch.jobs = len(jobs)
    batch.save(update_fields=["jobs"])
    try:
        batch.input_file_id = client.upload(endpoint, name=f"{batch.run_id}.jsonl", data=data)
        batch.save(update_fields=["input_file_id"])
        remote = client.create(endpoint, input_file_id=batch.input_file_id,
                               metadata={METADATA_KEY: str(batch.pk)})  # fmt: skip
    except llm.LLMError as error:
        _submit_failed(kind, batch, error)
        return batch
    batch.provider_id, batch.submitted_at = remote.id, timezone.now()
    _take_remote(batch, remote)
    logger.info("Sent %d %s jobs as batch %s", len(jobs), kind.label, remote.id)
    return batch


def _submit_failed(kind: BatchKind, batch: LLMBatch, error: llm.LLMError) -> None:
    """Nothing was sent: the jobs go into the next batch (or fail, for an error that another
    try cannot mend, such as a refused key)."""
    message = f"Sending batch {batch.pk} failed: {error}"
    logger.warning(message)
    batch.status, batch.error_message = LLMBatch.Status.FAILED, message
    batch.ingested_at = timezone.now()
    batch.save(update_fields=["status", "error_message", "ingested_at"])
    for pk, attempts in _owned(kind, batch).values_list("pk", "attempts"):
        job = RunningJob(kind.model, pk, batch.run_id)
        _again_or_fail(job, attempts, Fail(error.kind, message), retryable=error.retryable)


def batch_poll(batch: LLMBatch) -> None:
    """Read the provider's state of the batch; ingest it once it has ended."""
    kind = batch_kinds()[batch.kind]
    if batch.status == LLMBatch.Status.PREPARING:
        return _recover(kind, batch)
    if batch.status not in LLMBatch.ENDED:
        remote = client.retrieve(batch.endpoint, batch.provider_id)
        _take_remote(batch, remote)
        # The jobs are alive while their batch is: no sweep sends them to a streaming worker.
        _owned(kind, batch).update(heartbeat_at=timezone.now())
    if batch.status in LLMBatch.ENDED:
        batch_ingest(batch)


def _take_remote(batch: LLMBatch, remote) -> None:
    batch.status = remote.status
    batch.output_file_id = remote.output_file_id or ""
    batch.error_file_id = remote.error_file_id or ""
    counts = remote.request_counts
    batch.request_counts = counts.model_dump() if counts is not None else {}
    errors = getattr(remote.errors, "data", None) or []
    batch.error_message = "; ".join(f"{e.code}: {e.message}" for e in errors)
    batch.polled_at = timezone.now()
    fields = ["status", "output_file_id", "error_file_id", "request_counts", "error_message"]
    batch.save(update_fields=[*fields, "polled_at", "provider_id", "submitted_at"])


def _recover(kind: BatchKind, batch: LLMBatch) -> None:
    """A batch whose worker stopped between claiming its jobs and recording the provider's
    batch: adopt the provider's batch if it was created, else send the jobs again."""
    if timezone.now() - batch.created_at < PREPARING_STALE:
        return  # its worker may still be uploading
    remote = None
    if batch.input_file_id:  # uploaded: the batch may have been created
        remote = client.find(batch.endpoint, METADATA_KEY, str(batch.pk))
    if remote is not None:
        batch.provider_id, batch.submitted_at = remote.id, timezone.now()
        _take_remote(batch, remote)
        return
    _submit_failed(kind, batch, llm.LLMError("server_error", "its worker stopped before the "
                                             "provider had it", retryable=True))  # fmt: skip


def batch_ingest(batch: LLMBatch) -> int:
    """Write each result of an ended batch into its job, once; how many jobs were waiting.

    Only jobs the batch still owns are read, and each write is a compare-and-set on that
    ownership: a job written by an earlier, interrupted ingestion (or cancelled) is
    skipped, so running this again after a kill writes nothing twice."""
    kind = batch_kinds()[batch.kind]
    endpoint = batch.endpoint
    results = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        for line in client.lines(endpoint, file_id):
            results[line.get("custom_id")] = line
    started = batch.submitted_at or batch.created_at
    latency_ms = int((timezone.now() - started).total_seconds() * 1000)
    written = 0
    pks = list(_owned(kind, batch).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), INGEST_CHUNK):  # no cursor open while the rows change
        chunk = pks[start : start + INGEST_CHUNK]
        if batch.leased_until is not None:
            batch_lease_renew(batch)
        rows = _owned(kind, batch).filter(pk__in=chunk).select_related(*kind.related)
        for row in rows.order_by("pk"):
            job = RunningJob(kind.model, row.pk, batch.run_id)
            _ingest_one(kind, batch, row, job, results.get(row.idempotency_key), latency_ms)
            written += 1
    batch.ingested_at = timezone.now()
    batch.save(update_fields=["ingested_at"])
    logger.info("Ingested batch %s: %d jobs", batch.provider_id, written)
    return written


def _ingest_one(kind, batch, row, job: RunningJob, line: dict | None, latency_ms: int) -> None:
    response = (line or {}).get("response") or {}
    if line is None or line.get("error") or response.get("status_code") != 200:
        failed, retryable = _line_failure(batch, line)
        return _again_or_fail(job, row.attempts, failed, retryable=retryable)
    endpoint = batch.endpoint
    result = client.completion(endpoint, messages=row.request.get("messages", []),
                               body=response.get("body") or {}, latency_ms=latency_ms)  # fmt: skip
    result.raw["batch"] = {"id": batch.provider_id, "request_id": response.get("request_id")}
    cost = row.cost
    if usage.has_prices(endpoint) and None not in (result.prompt_tokens, result.completion_tokens):
        paid = endpoint.cost(result.prompt_tokens, result.completion_tokens, batched=True)
        cost = (cost or Decimal(0)) + paid
    paid = {
        "response": result.raw, "content": result.content, "reasoning": result.reasoning,
        "finish_reason": result.finish_reason, "model_reported": result.model,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "latency_ms": result.latency_ms, "cost": cost, **usage.usage_fields(result),
    }  # fmt: skip
    outcome = kind.on_answer(row, result, row.attempts)
    if isinstance(outcome, Succeed):
        finished = job.finish(status=kind.model.Status.SUCCEEDED, **{**outcome.fields, **paid})
        if finished and outcome.then:
            outcome.then()
    elif isinstance(outcome, Retry):
        give_up = replace(outcome.give_up, fields={**outcome.give_up.fields, **paid})
        _again_or_fail(job, row.attempts, give_up, retryable=True)
    else:
        job.fail(outcome.kind, outcome.message, **{**outcome.fields, **paid})


def _line_failure(batch: LLMBatch, line: dict | None) -> tuple[Fail, bool]:
    """What a request the batch did not answer failed of, and whether another batch may."""
    name = batch.provider_id or batch.pk
    if line is None or (line.get("error") or {}).get("code") in ("batch_expired",
                                                                  "batch_cancelled"):  # fmt: skip
        said = NOT_ANSWERED.get(batch.status, f"ended ({batch.status})")
        return Fail("timeout", f"Batch {name} {said} before answering this request."), True
    if line.get("error"):
        error = line["error"]
        message = f"Batch {name}: {error.get('code')}: {error.get('message')}"
        return Fail("server_error", message), True
    response = line.get("response") or {}
    code = response.get("status_code") or 0
    detail = ((response.get("body") or {}).get("error") or {}).get("message", "")
    message = f"Batch {name} answered this request with {code}: {detail}"
    if code == 429:
        return Fail("rate_limited", message), True
    if code >= 500:
        return Fail("server_error", message), True
    return Fail("auth" if code in (401, 403) else "bad_request", message), False


def _again_or_fail(job: RunningJob, attempts: int, failed: Fail, *, retryable: bool) -> None:
    """Queue the job for the next batch, or fail it when no batch is left to try."""
    limit = settings.LLM_BATCH_MAX_ATTEMPTS
    if not retryable or attempts >= limit:
        suffix = f" (gave up after {attempts} batches)" if retryable else ""
        job.fail(failed.kind, failed.message + suffix, **failed.fields)
        return
    fields = {k: v for k, v in failed.fields.items() if k == "cost"}  # what was paid so far
    job.update(what=f"queueing {job.model.__name__} {job.pk} for the next batch",
               status=job.model.Status.QUEUED, run_id="", error_kind=failed.kind,
               error_message=f"{failed.message} It goes into the next batch "
               f"(attempt {attempts + 1} of {limit}).", **fields)  # fmt: skip


def _owned(kind: BatchKind, batch: LLMBatch):
    """The jobs the batch still owns (found through the index on their batch)."""
    return kind.model.objects.filter(batch=batch, run_id=batch.run_id,
                                     status=kind.model.Status.RUNNING)  # fmt: skip


def batch_cancel(*, batch_id: int) -> LLMBatch:
    """Ask the provider to stop a batch; what it answered by then is kept, the rest goes
    into the next batch."""
    batch = LLMBatch.objects.select_related("endpoint").get(pk=batch_id)
    if batch.provider_id and batch.status not in LLMBatch.ENDED:
        _take_remote(batch, client.cancel(batch.endpoint, batch.provider_id))
    return batch
