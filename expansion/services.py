"""The expansion app's writes, for its views, its tasks and the apps that call it.

Where each lives: queueing, cancelling and finding stalled jobs in ``queueing``; running a
job in ``running`` (on the engine in ``jobs``); endpoints in ``endpoints``; prompt versions
in ``prompts``.
"""

from .endpoints import endpoint_default, endpoint_save
from .prompts import prompt_activate, prompt_version_create, prompt_version_edit
from .queueing import (
    idempotency_key,
    trace_cancel,
    traces_queue_missing,
    traces_request,
    traces_resend,
    traces_stalled,
)
from .running import trace_run

__all__ = [
    "endpoint_default",
    "endpoint_save",
    "idempotency_key",
    "prompt_activate",
    "prompt_version_create",
    "prompt_version_edit",
    "trace_cancel",
    "trace_run",
    "traces_queue_missing",
    "traces_request",
    "traces_resend",
    "traces_stalled",
]
