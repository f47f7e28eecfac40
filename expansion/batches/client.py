"""The batch API calls, through the same openai client as streamed calls (llm.client_for),
and a batch result line read as a Completion."""

import json

from .. import llm
from .. import usage as usage_counts

CHAT_URL = "/v1/chat/completions"
WINDOW = "24h"


def upload(endpoint, *, name: str, data: bytes) -> str:
    """Upload a JSONL of requests; the file's id."""
    try:
        return llm.client_for(endpoint).files.create(file=(name, data), purpose="batch").id
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc


def create(endpoint, *, input_file_id: str, metadata: dict[str, str]):
    """Start a batch of the uploaded requests; the provider's Batch object."""
    try:
        return llm.client_for(endpoint).batches.create(
            input_file_id=input_file_id, endpoint=CHAT_URL, completion_window=WINDOW,
            metadata=metadata,
        )  # fmt: skip
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc


def retrieve(endpoint, provider_id: str):
    try:
        return llm.client_for(endpoint).batches.retrieve(provider_id)
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc


def find(endpoint, metadata_key: str, value: str):
    """The provider's batch whose metadata says ``metadata_key: value`` among the latest
    hundred, or None: the batch of a submission whose answer was lost."""
    try:
        page = llm.client_for(endpoint).batches.list(limit=100)
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc
    return next((b for b in page.data if (b.metadata or {}).get(metadata_key) == value), None)


def cancel(endpoint, provider_id: str):
    try:
        return llm.client_for(endpoint).batches.cancel(provider_id)
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc


def lines(endpoint, file_id: str) -> list[dict]:
    """The JSON lines of a result file."""
    if not file_id:
        return []
    try:
        text = llm.client_for(endpoint).files.content(file_id).text
    except llm.CALL_FAILURES as exc:
        raise llm._classify(exc) from exc
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def completion(endpoint, *, messages: list[dict], body: dict, latency_ms: int) -> llm.Completion:
    """A batch's answer to one request (an unstreamed chat.completion) as the streamed
    path's Completion, with the tokens counted the same way when the provider sent none."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    text = message.get("content") or ""
    thought = message.get("reasoning_content") or message.get("reasoning") or ""
    usage = body.get("usage") or {}
    if isinstance(usage.get("prompt_tokens"), int) and isinstance(
        usage.get("completion_tokens"), int
    ):
        counted = usage_counts.Counted(usage["prompt_tokens"], usage["completion_tokens"],
                                       usage_counts.PROVIDER)  # fmt: skip
    else:
        prompt = "\n".join(str(m.get("content") or "") for m in messages)
        counted = usage_counts.count_locally(endpoint, key=llm.api_key(endpoint), prompt=prompt,
                                             completion=thought + text)  # fmt: skip
    finish = choice.get("finish_reason") or ""
    return llm.Completion(
        content=text, reasoning=thought, finish_reason=finish, model=body.get("model") or "",
        prompt_tokens=counted.prompt_tokens, completion_tokens=counted.completion_tokens,
        latency_ms=latency_ms, usage_source=counted.source,
        raw={"id": body.get("id", ""), "model": body.get("model", ""), "finish_reason": finish,
             "content": text, "reasoning": thought, "usage": body.get("usage")},
    )  # fmt: skip
