"""Every call to an LLM goes through here: the openai SDK, streaming, and error kinds."""

import importlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import openai

from . import usage as usage_counts
from .models import api_key_env_problem

CONNECT_TIMEOUT = 10.0


@dataclass
class Completion:
    content: str
    reasoning: str
    finish_reason: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: int
    raw: dict = field(default_factory=dict)
    usage_source: str = usage_counts.PROVIDER  # or counted here when the provider sent none


class LLMError(Exception):
    """A failed call, with the kind the trace records and whether trying again can help."""

    def __init__(
        self, kind: str, message: str, *, retryable: bool, retry_after: float | None = None,
        cut: bool = False,
    ):  # fmt: skip
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after
        self.cut = cut  # the server ended the stream mid-answer (see stream_cut)


def api_key(endpoint) -> str:
    """The key from the environment variable the endpoint names (never stored)."""
    if not endpoint.api_key_env:
        return "none"
    problem = api_key_env_problem(endpoint.api_key_env)
    if problem:  # e.g. written to the database directly, or removed from the allow-list since
        raise LLMError("auth", f"Endpoint {endpoint.name}: {problem}", retryable=False)
    value = os.environ.get(endpoint.api_key_env, "")
    if not value:
        raise LLMError(
            "auth",
            f"The environment variable {endpoint.api_key_env} that endpoint {endpoint.name} "
            "names is not set on this worker.",
            retryable=False,
        )
    return value


_clients: dict[tuple, openai.OpenAI] = {}
_clients_lock = threading.Lock()


def client_for(endpoint) -> openai.OpenAI:
    """One client per endpoint setting in each process, shared by its threads.

    Building a client loads the certificate bundle and a connection pool: tens of
    milliseconds of CPU that a worker with many requests in flight cannot spend per call.
    """
    key = (endpoint.base_url, api_key(endpoint), endpoint.timeout_seconds)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = openai.OpenAI(
                base_url=endpoint.base_url,
                api_key=key[1],
                max_retries=0,  # retries are ours: they must respect the shared limiter
                timeout=httpx.Timeout(endpoint.timeout_seconds, connect=CONNECT_TIMEOUT),
            )
        return client


def warm_up() -> None:
    """Load the SDK's API resources now. The first ``client.chat`` of a process imports all
    of them (about 0.25 s of CPU), and every thread that calls in the meantime waits."""
    importlib.import_module("openai.resources.chat")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    value = exc.response.headers.get("retry-after") if exc.response is not None else None
    try:
        return float(value) if value else None
    except ValueError:
        return None


# What the SDK and httpx raise for a failed call; anything else (a cancelled job's progress
# callback, a bug) passes through complete() unchanged.
CALL_FAILURES = (openai.APIConnectionError, openai.APIStatusError, httpx.HTTPError)


def _classify(exc: Exception) -> LLMError:
    if isinstance(exc, openai.RateLimitError):
        return LLMError("rate_limited", f"The endpoint answered 429: {exc.message}",
                        retryable=True, retry_after=_retry_after(exc))  # fmt: skip
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", "The endpoint did not answer in time.", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return LLMError("server_error", f"Could not reach the endpoint: {exc}", retryable=True)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMError("auth", f"The endpoint refused the key: {exc.message}", retryable=False)
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            message = f"The endpoint failed ({exc.status_code}): {exc.message}"
            return LLMError("server_error", message, retryable=True, retry_after=_retry_after(exc))
        return LLMError(
            "bad_request",
            f"The endpoint rejected the request ({exc.status_code}): {exc.message}",
            retryable=False,
        )
    return LLMError("server_error", f"The connection failed: {exc}", retryable=True)


def stream_cut(kind: str, received: int, cause: str) -> LLMError:
    """The server ended a stream before its answer did. A server that runs one request at a
    time may do it on purpose: llama-cpp-python's server interrupts the running request when
    another arrives (its ``interrupt_requests`` setting, on by default), answering the cut one
    with ``[DONE]`` and no finish reason. Say so, so that whoever reads the trace can fix it."""
    return LLMError(
        kind,
        f"The stream was cut by the server before the answer was complete ({cause}, after "
        f"{received} characters). Check the server's own concurrency: a server that runs one "
        "request at a time may interrupt it when another arrives (start llama-cpp-python's "
        "server with --interrupt_requests False), or set this endpoint's max in flight to 1.",
        retryable=True,
        cut=True,
    )


def _sse_chunks(response) -> Iterator[dict]:
    """The chunks of a streamed chat completion, read from its server-sent events as the SDK's
    ``Stream`` reads them (``data:`` lines up to a blank line, ``[DONE]`` ends, a chunk with
    an ``error`` is the server's failure), as plain dicts. The SDK builds a pydantic model of
    every chunk, which cost a worker more CPU than everything else it does for a job: a
    1,500-token answer is 1,500 chunks.
    """
    data: list[str] = []
    lines = response.iter_lines()
    for line in itertools.chain(lines, [""]):  # a last event without its blank line counts
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
            continue
        if line or not data:
            continue  # another field (event, id, retry), a comment, or a blank line alone
        text, data = "\n".join(data), []
        if text.startswith("[DONE]"):
            return
        try:
            chunk = json.loads(text)
        except ValueError:
            raise LLMError("invalid_output", f"The endpoint sent a stream chunk that is not "
                           f"JSON: {text[:200]!r}", retryable=True) from None  # fmt: skip
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else None
            raise LLMError("server_error", "The endpoint failed mid-stream: "
                           f"{message or 'an error occurred during streaming'}",
                           retryable=True)  # fmt: skip
        yield chunk


def _extra(obj, name: str) -> str:
    """A field the SDK may not declare (``reasoning_content``): an attribute when declared,
    else among the model's extra fields. Asking pydantic for an undeclared attribute raises
    inside it, which costs more per chunk than the rest of reading it."""
    if name in type(obj).model_fields:
        return getattr(obj, name) or ""
    return (obj.model_extra or {}).get(name) or ""


def complete(
    endpoint,
    *,
    messages: list[dict],
    params: dict,
    on_progress: Callable[[str, str], None] | None = None,
    progress_every: float = 0.0,
    sample: int | None = None,
) -> Completion:
    """Stream one chat completion; call ``on_progress(content, reasoning)`` as text arrives,
    at most once per ``progress_every`` seconds (the text so far is joined only then: joining
    it on every chunk of a long answer costs more than reading the stream).

    ``sample`` goes out as the ``X-Journey-Sample`` header, which providers ignore and the
    simulated endpoint uses so that the samples of one record differ.

    Raises LLMError with a kind the trace records.
    """
    started = time.monotonic()
    content, reasoning = [], []
    finish_reason, model, usage, chunk_id, chunks = "", "", None, "", 0
    next_progress = started + progress_every
    headers = None if sample is None else {"X-Journey-Sample": str(sample)}
    try:
        with client_for(endpoint).chat.completions.with_streaming_response.create(
            messages=messages, stream=True, stream_options={"include_usage": True},
            extra_headers=headers, **params,
        ) as response:  # fmt: skip
            for chunk in _sse_chunks(response):
                chunks += 1
                chunk_id = chunk.get("id") or chunk_id
                model = chunk.get("model") or model
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or ():
                    delta = choice.get("delta")
                    if delta:
                        content.append(delta.get("content") or "")
                        reasoning.append(
                            delta.get("reasoning_content") or delta.get("reasoning") or ""
                        )
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
                if on_progress and (now := time.monotonic()) >= next_progress:
                    next_progress = now + progress_every
                    on_progress("".join(content), "".join(reasoning))
    except httpx.RemoteProtocolError as exc:  # the body stopped mid-stream
        received = sum(map(len, content)) + sum(map(len, reasoning))
        if not received:
            raise _classify(exc) from exc
        raise stream_cut("server_error", received, "the connection closed mid-stream") from exc
    except CALL_FAILURES as exc:
        raise _classify(exc) from exc
    if not chunks:
        return _complete_unstreamed(endpoint, messages, params, headers, started)
    if not finish_reason:
        received = sum(map(len, content)) + sum(map(len, reasoning))
        raise stream_cut("invalid_output", received, "it ended with no finish reason")
    text, thought = "".join(content), "".join(reasoning)
    latency_ms = int((time.monotonic() - started) * 1000)  # the call's, not the counting's
    prompt_tokens, completion_tokens = (
        (usage or {}).get("prompt_tokens"),
        (usage or {}).get("completion_tokens"),
    )
    if prompt_tokens is not None and completion_tokens is not None:
        counted = usage_counts.Counted(prompt_tokens, completion_tokens, usage_counts.PROVIDER)
    else:
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        counted = usage_counts.count_locally(
            endpoint, key=api_key(endpoint), prompt=prompt, completion=thought + text
        )
    return Completion(
        content=text,
        reasoning=thought,
        finish_reason=finish_reason,
        model=model,
        prompt_tokens=counted.prompt_tokens,
        completion_tokens=counted.completion_tokens,
        latency_ms=latency_ms,
        usage_source=counted.source,
        raw={
            "id": chunk_id,
            "model": model,
            "finish_reason": finish_reason,
            "content": text,
            "reasoning": thought,
            "usage": usage or None,
        },
    )


def _complete_unstreamed(endpoint, messages, params, headers, started) -> Completion:
    """Ask again without streaming after a stream that ended before its first chunk.

    Such a stream is how llama-cpp-python's server fails a request it accepted: its answer
    has started (200) when the model raises, e.g. for a prompt over its context window, so
    the reason is lost. The same request unstreamed gets the real answer (400 with the
    server's message, a bad_request), and costs nothing more, since the stream generated none.
    """
    try:
        # The server closes the connection the failed stream used, which the pool may hand
        # out again: one retry goes out on a fresh one.
        client = client_for(endpoint).with_options(max_retries=1)
        response = client.chat.completions.create(
            messages=messages, stream=False, extra_headers=headers, **params
        )
    except CALL_FAILURES as exc:
        raise _classify(exc) from exc
    choice = response.choices[0] if response.choices else None
    if choice is None or not choice.finish_reason:
        raise stream_cut("invalid_output", 0, "it ended before its first chunk")
    message, usage = choice.message, response.usage
    text = message.content or ""
    thought = _extra(message, "reasoning_content") or _extra(message, "reasoning")
    return Completion(
        content=text, reasoning=thought, finish_reason=choice.finish_reason,
        model=response.model or "",
        prompt_tokens=usage.prompt_tokens if usage else None,
        completion_tokens=usage.completion_tokens if usage else None,
        latency_ms=int((time.monotonic() - started) * 1000),
        raw={"id": response.id, "model": response.model, "finish_reason": choice.finish_reason,
             "content": text, "reasoning": thought,
             "usage": usage.model_dump() if usage else None},
    )  # fmt: skip
