"""A server that cuts streams: the trace says so and what to check, and repeated cuts while
other requests are in flight lower the endpoint's concurrency for a while."""

import json
import time

import httpx
import openai
import pytest

from expansion import limiter as limiter_module
from expansion import llm, services
from expansion.jobs import engine
from expansion.limiter import endpoint_slot, limiter
from expansion.models import LLMEndpoint

pytestmark = pytest.mark.django_db


def cut_stream(request: httpx.Request) -> httpx.Response:
    """What llama-cpp-python's server sends a request it interrupts: some text, then
    ``[DONE]`` with no finish reason."""
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "Let me think"},
                          "finish_reason": None}]}  # fmt: skip
    body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


@pytest.fixture
def cutting_server(monkeypatch):
    client = openai.OpenAI(
        base_url="http://llm.test/v1", api_key="none", max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(cut_stream)),
    )  # fmt: skip
    monkeypatch.setattr(llm, "client_for", lambda endpoint: client)


def make_endpoint(**fields):
    return LLMEndpoint.objects.create(
        name=f"e{LLMEndpoint.objects.count()}", base_url="http://llm.test/v1", model="m", **fields
    )


def test_a_cut_stream_says_the_server_cut_it_and_what_to_check(cutting_server):
    with pytest.raises(llm.LLMError) as raised:
        llm.complete(make_endpoint(), messages=[{"role": "user", "content": "Hi"}],
                     params={"model": "m", "max_tokens": 10})  # fmt: skip
    error = raised.value
    assert error.kind == "invalid_output" and error.retryable and error.cut
    message = str(error)
    assert "cut by the server" in message and "no finish reason" in message
    assert "--interrupt_requests False" in message and "max in flight to 1" in message


def test_cuts_while_others_are_in_flight_lower_the_concurrency_for_a_while(shared, monkeypatch):
    endpoint = make_endpoint(max_in_flight=4)
    others = [f"other{n}" for n in range(3)]
    for slot in others:
        assert shared.try_acquire(endpoint, slot, 1)
    assert shared.stream_cut(endpoint) == 0  # one cut may be a fluke
    assert shared.max_in_flight(endpoint) == 4
    assert shared.stream_cut(endpoint) == 2  # four were in flight: half of them
    assert shared.max_in_flight(endpoint) == 2
    assert not shared.try_acquire(endpoint, "new", 1)  # three still in flight, two allowed
    for slot in others:
        shared.release(endpoint, slot)
    assert shared.try_acquire(endpoint, "a", 1) and shared.try_acquire(endpoint, "b", 1)
    assert not shared.try_acquire(endpoint, "c", 1)


def test_a_cut_with_nothing_else_in_flight_lowers_nothing(shared):
    endpoint = make_endpoint(max_in_flight=2)
    for _ in range(3):
        assert shared.stream_cut(endpoint) == 0
    assert shared.max_in_flight(endpoint) == 2


def test_the_lowered_concurrency_recovers_over_time(shared, monkeypatch):
    monkeypatch.setattr(limiter_module, "CAP_RECOVERY", 1)
    endpoint = make_endpoint(max_in_flight=2)
    assert shared.try_acquire(endpoint, "other", 1)
    shared.stream_cut(endpoint)
    assert shared.stream_cut(endpoint) == 1
    assert shared.max_in_flight(endpoint) == 1
    time.sleep(1.2)
    assert shared.max_in_flight(endpoint) == 2


def test_a_job_cut_while_another_is_in_flight_lowers_the_endpoint_and_says_why(
    submitted, cutting_server, shared, monkeypatch, settings
):
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.01)
    settings.EXPANSION_MAX_ATTEMPTS = 2
    endpoint = make_endpoint(max_in_flight=2)
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    with endpoint_slot(endpoint, tokens=1):  # another request in flight all along
        services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "failed" and trace.error_kind == "invalid_output"
    assert "cut by the server" in trace.error_message
    assert "gave up after 2 attempts" in trace.error_message
    assert limiter().max_in_flight(endpoint) == 1  # the next jobs wait instead of being cut


def test_a_stream_that_ends_before_its_first_chunk_is_asked_again_unstreamed(monkeypatch):
    """llama-cpp-python's server answers 200 and an empty stream for a prompt over its
    context window; unstreamed, it answers 400 with the reason."""
    message = "This model's maximum context length is 2048 tokens."

    def server(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["stream"]:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"")
        return httpx.Response(
            400, json={"error": {"message": message, "type": "invalid_request_error"}}
        )

    client = openai.OpenAI(
        base_url="http://llm.test/v1", api_key="none", max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )  # fmt: skip
    monkeypatch.setattr(llm, "client_for", lambda endpoint: client)
    with pytest.raises(llm.LLMError) as raised:
        llm.complete(make_endpoint(), messages=[{"role": "user", "content": "Hi"}],
                     params={"model": "m", "max_tokens": 10})  # fmt: skip
    assert raised.value.kind == "bad_request" and not raised.value.retryable
    assert "(400)" in str(raised.value) and message in str(raised.value)


def _streaming(body: bytes):
    client = openai.OpenAI(
        base_url="http://llm.test/v1", api_key="none", max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(
            lambda request: httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=body
            )
        )),
    )  # fmt: skip
    return client


def _chunk(**delta) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip


def _complete(monkeypatch, body: bytes):
    monkeypatch.setattr(llm, "client_for", lambda endpoint: _streaming(body))
    return llm.complete(make_endpoint(), messages=[{"role": "user", "content": "Hi"}],
                        params={"model": "m", "max_tokens": 10})  # fmt: skip


def test_a_stream_is_read_as_its_events_say(monkeypatch):
    """Events split over several data lines, other fields and comments, reasoning in either
    field, usage in the last chunk, and a last event with no blank line after it."""
    done = {**_chunk(), "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}  # fmt: skip
    split = json.dumps(_chunk(content="Four.")).replace(', "model"', ',\ndata: "model"')
    body = (
        ": a comment the server sends to keep the line open\n\n"
        f"event: message\nid: 1\ndata: {json.dumps(_chunk(reasoning_content='Two and two. '))}\n\n"
        f"data: {json.dumps(_chunk(reasoning='Yes.'))}\n\n"
        f"data: {split}\n\n"
        f"data: {json.dumps(done)}"
    ).encode()
    result = _complete(monkeypatch, body)
    assert (result.content, result.reasoning, result.finish_reason) == (
        "Four.",
        "Two and two. Yes.",
        "stop",
    )
    assert (result.prompt_tokens, result.completion_tokens, result.usage_source) == (
        7,
        3,
        "provider",
    )
    assert result.raw["usage"]["total_tokens"] == 10


def test_an_error_sent_mid_stream_fails_the_call_with_the_servers_words(monkeypatch):
    error = {"error": {"message": "the GPU fell over", "type": "server_error"}}
    body = f"data: {json.dumps(_chunk(content='Let me'))}\n\ndata: {json.dumps(error)}\n\n"
    with pytest.raises(llm.LLMError) as raised:
        _complete(monkeypatch, body.encode())
    assert raised.value.kind == "server_error" and raised.value.retryable
    assert "the GPU fell over" in str(raised.value)


def test_a_chunk_that_is_not_json_is_invalid_output(monkeypatch):
    body = f"data: {json.dumps(_chunk(content='Let me'))}\n\ndata: {{not json\n\n"
    with pytest.raises(llm.LLMError) as raised:
        _complete(monkeypatch, body.encode())
    assert raised.value.kind == "invalid_output" and "not JSON" in str(raised.value)
