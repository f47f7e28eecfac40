"""One LLM job, run as a loop over one attempt that ends in an outcome.

An attempt waits for a slot under the endpoint's shared limits, streams one completion and
returns Succeed, Retry (after so many seconds) or Fail. What a completed answer means is the
kind's own: it passes ``on_answer``, which turns the answer into an outcome. Everything else
(attempts, backoff, cool-downs, settling tokens, cost, progress saves, heartbeats,
cancellation) is written here once for every kind.
"""

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .. import llm, usage
from ..limiter import LimitTimeout, bookkeeping, endpoint_slot, endpoint_stream_cut, limiter
from ..models import LLMEndpoint
from . import lifecycle
from .lifecycle import RunningJob
from .retrying import DATABASE_DOWN, connection_release

logger = logging.getLogger(__name__)

# Seconds between progress saves while an answer streams in. Each save is a write, with a
# connection taken from the pool and given back (a couple of milliseconds of CPU): for an
# answer of half a minute, saving every second cost more than all the job's other database
# work together. A process streaming many answers saves less often, so that together they
# save at most EXPANSION_PROGRESS_SAVES_PER_SECOND times a second (at 128 answers in flight
# per process, every 2 s was a fifth of its CPU), but at least every PROGRESS_EVERY_MAX
# seconds: a progress save is also where a cancelled job stops paying for its answer.
PROGRESS_EVERY, PROGRESS_EVERY_MAX = 2.0, 10.0
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0


class _Streaming:
    """How many answers this process is streaming in."""

    def __init__(self) -> None:
        self.count, self.lock = 0, threading.Lock()

    @contextmanager
    def one(self) -> Iterator[int]:
        with self.lock:
            self.count += 1
            count = self.count
        try:
            yield count
        finally:
            with self.lock:
                self.count -= 1


streaming = _Streaming()


def progress_every(in_process: int) -> float:
    """Seconds between one answer's progress saves while ``in_process`` answers (itself
    included) stream into this process."""
    per_second = settings.EXPANSION_PROGRESS_SAVES_PER_SECOND
    return min(PROGRESS_EVERY_MAX, max(PROGRESS_EVERY, in_process / per_second))


class Cancelled(Exception):
    """The job stopped being this run's while its answer streamed in."""


@dataclass(frozen=True)
class Fail:
    kind: str
    message: str
    fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Retry:
    """Try again after ``after`` seconds; when that was the last attempt, record ``give_up``."""

    after: float
    give_up: Fail


@dataclass(frozen=True)
class Succeed:
    """Mark the job succeeded with ``fields``; then call ``then`` if this run still owned it."""

    fields: dict
    then: Callable[[], None] | None = None


@dataclass(frozen=True)
class NoSlot:
    """No slot came free in time: not an attempt; the loop checks the job is still ours."""


Outcome = Succeed | Retry | Fail | NoSlot
OnAnswer = Callable[[llm.Completion, int], Succeed | Retry | Fail]


@dataclass(frozen=True)
class Call:
    """The request a job sends on each attempt."""

    endpoint: LLMEndpoint
    messages: list[dict]
    params: dict
    sample: int | None = None


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential with full jitter, but never sooner than the server asked."""
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))  # noqa: S311
    return max(delay, retry_after or 0)


def answer_unusable(
    result: llm.Completion, *, attempt: int, max_tokens: int
) -> Fail | Retry | None:
    """Whether an answer is cut off or empty, which no kind can use; None when it is whole."""
    if result.finish_reason == "length":
        message = (
            f"The answer hit max_tokens ({max_tokens}) and was cut off; "
            "raise max_tokens on the endpoint or re-expand."
        )
        return Fail("truncated", message, {"flag_truncated": True})
    if not result.content.strip():  # thinking alone, without an answer, is no answer
        message = f"The endpoint answered with no text {attempt} times."
        if result.reasoning.strip():
            message = f"The endpoint answered with reasoning but no answer text {attempt} times."
        # An overloaded server, as often as not: try again.
        return Retry(backoff(attempt, None), give_up=Fail("empty", message))
    return None


def job_run(job: RunningJob, call: Call, *, on_answer: OnAnswer) -> None:
    """Attempt the call until an outcome ends the job, or the job is no longer this run's."""
    with lifecycle.heartbeats.held(job):
        job.update(what="saving the request", request={"messages": call.messages, **call.params})
        run = _Run(job, call, on_answer)
        attempt = 0
        while True:
            attempt += 1
            if not job.update(what="starting an attempt", attempts=attempt,
                              heartbeat_at=timezone.now()):  # fmt: skip
                return  # cancelled, or taken over by another worker: never call twice
            connection_release()  # none held while the job waits for a slot and its answer
            try:
                outcome = run.attempt(attempt)
            except Cancelled:
                return  # a progress save found the job no longer ours
            if isinstance(outcome, NoSlot):
                attempt -= 1  # waiting for a slot is not an attempt; keep the heartbeat fresh
            elif isinstance(outcome, Retry) and attempt < settings.EXPANSION_MAX_ATTEMPTS:
                time.sleep(outcome.after)
            elif isinstance(outcome, Succeed):
                finished = job.finish(status=job.model.Status.SUCCEEDED, **outcome.fields)
                if finished and outcome.then:
                    outcome.then()
                return
            else:
                failed = outcome.give_up if isinstance(outcome, Retry) else outcome
                job.fail(failed.kind, failed.message, **failed.fields)
                return


class _Run:
    """What one job's attempts share: the progress saves and the cost paid so far."""

    def __init__(self, job: RunningJob, call: Call, on_answer: OnAnswer) -> None:
        self.job, self.call, self.on_answer = job, call, on_answer
        self.cost: Decimal | None = None  # unknown until an answer can be priced
        self.prompt_estimate = sum(len(m["content"]) for m in call.messages) // 3

    def attempt(self, attempt: int) -> Outcome:
        endpoint, params = self.call.endpoint, self.call.params
        # Waiting for a slot, the job looks up now and then whether it was cancelled or taken
        # over (the loop's next write).
        slot_wait = max(0.5, min(10.0, lifecycle.HEARTBEAT_STALE_SECONDS / 4))
        booked = self.prompt_estimate + params["max_tokens"]  # at most; settled below
        try:
            with (
                endpoint_slot(endpoint, tokens=booked, wait=slot_wait) as slot,
                streaming.one() as in_process,
            ):
                result = llm.complete(endpoint, messages=self.call.messages, params=params,
                                      on_progress=self.progress,
                                      progress_every=progress_every(in_process),
                                      sample=self.call.sample)  # fmt: skip
        except LimitTimeout:
            return NoSlot()
        except llm.LLMError as error:
            if error.kind == "rate_limited":
                pause = error.retry_after or backoff(attempt, None)
                bookkeeping("start a cool-down", limiter().cool_down, endpoint, pause)
            if error.cut:
                bookkeeping("count a cut stream", endpoint_stream_cut, endpoint)
            if not error.retryable:
                return Fail(error.kind, str(error))
            give_up = Fail(error.kind, f"{error} (gave up after {attempt} attempts)")
            return Retry(backoff(attempt, error.retry_after), give_up=give_up)
        if endpoint.tokens_per_minute and result.completion_tokens is not None:
            used = (result.prompt_tokens or 0) + result.completion_tokens
            # The minute counts what was used.
            bookkeeping("book the tokens used", limiter().settle, endpoint, slot, booked, used)
        self.cost = usage.cost_added(self.cost, endpoint, result)
        paid = {
            "response": result.raw, "content": result.content, "reasoning": result.reasoning,
            "finish_reason": result.finish_reason, "model_reported": result.model,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "latency_ms": result.latency_ms, "cost": self.cost, "attempts": attempt,
            **usage.usage_fields(result),
        }  # fmt: skip
        return _with_paid(self.on_answer(result, attempt), paid)

    def progress(self, content: str, reasoning: str) -> None:
        try:
            updated = self.job.owned().update(
                content=content, reasoning=reasoning, heartbeat_at=timezone.now(),
                progress_tokens=(len(content) + len(reasoning)) // 4,
            )  # fmt: skip
        except DATABASE_DOWN:
            # Progress is only shown; the answer streaming in is what was paid for, and it
            # is saved whole at the end (retried until the database is back).
            logger.warning("Could not save the progress of job %s", self.job.pk, exc_info=True)
            connection.close()
            return
        connection_release()  # until the next save: the stream may run for minutes
        if not updated:
            raise Cancelled()  # out of the stream: this run pays for no more tokens


def _with_paid(outcome: Succeed | Retry | Fail, paid: dict) -> Outcome:
    """Whatever becomes of an answer, what was paid for it is recorded with it."""
    if isinstance(outcome, Retry):
        return replace(outcome, give_up=_with_paid(outcome.give_up, paid))
    return replace(outcome, fields={**outcome.fields, **paid})
