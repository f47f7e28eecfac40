"""The job kinds that can go out in a batch. A kind is a job model with the engine's
lifecycle fields, an ``endpoint``, an ``idempotency_key`` and a ``batch``, plus the request
it sends and what its answer means: the same two things it gives ``job_run``."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import models
from django.db.models import Q

from .. import llm
from ..jobs.engine import Call, Fail, Retry, Succeed


@dataclass(frozen=True)
class BatchKind:
    model: type[models.Model]
    call: Callable[[models.Model], Call]
    on_answer: Callable[[models.Model, llm.Completion, int], Succeed | Retry | Fail]
    related: tuple[str, ...] = ()  # what ``call`` and ``on_answer`` read, loaded with the jobs
    # Which queued jobs may go out now (a paused campaign's samples wait).
    sendable: Q = field(default_factory=Q)

    @property
    def label(self) -> str:
        return self.model._meta.label_lower


_kinds: dict[str, BatchKind] = {}


def batch_kind_register(kind: BatchKind) -> None:
    _kinds[kind.label] = kind


def batch_kinds() -> dict[str, BatchKind]:
    if not _kinds:
        _register_builtin()
    return _kinds


def _register_builtin() -> None:
    from ..models import Trace
    from ..prompts import build_messages
    from ..running import _trace_answered  # the streamed answer's handling, unchanged

    def trace_call(trace: Trace) -> Call:
        statement = trace.annotation.problem.statement
        messages = build_messages(trace.prompt, problem_statement=statement, record=trace.record)
        return Call(trace.endpoint, messages, dict(trace.params), sample=trace.sample_index)

    related = ("annotation__problem", "prompt", "endpoint")
    batch_kind_register(BatchKind(Trace, trace_call, _trace_answered, related=related))

    from ..models import RolloutCampaign, RolloutSample
    from ..rollouts.running import RELATED, sample_answered, sample_call

    active = Q(campaign__state=RolloutCampaign.State.ACTIVE)
    batch_kind_register(BatchKind(RolloutSample, sample_call, sample_answered, related=RELATED,
                                  sendable=active))  # fmt: skip
