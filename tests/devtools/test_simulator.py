"""The simulated LLM server, driven over HTTP by the real openai client."""

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import httpx
import openai
import pytest
from django.core.management import call_command

from devtools.simulator import SimulatedLLM

PROMPT = (
    "Expand this annotated solution into a long reasoning trace.\n"
    "Step 1 (attempt): multiply both sides by the common denominator seven\n"
    "Step 2 (reflection): the sign flips when dividing by a negative number\n"
    "Step 3 (correction): recompute the remainder using modular arithmetic\n"
    "Final answer: 17\n"
)
MESSAGES = [
    {"role": "system", "content": "You are a careful mathematician."},
    {"role": "user", "content": PROMPT},
]


@pytest.fixture
def sim():
    # Fast pacing keeps the whole file to a few seconds.
    with SimulatedLLM(seconds_per_token=0.0002, target_tokens=150, chunk_interval=0.005) as s:
        yield s


def client(sim, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=timeout)


def ask(sim, **kwargs):
    return client(sim).chat.completions.create(model="m", messages=MESSAGES, **kwargs)


def stream(sim, **kwargs):
    """Return (content, reasoning, finish_reason, usage) assembled from a stream."""
    content, reasoning, finish, usage = [], [], None, None
    chunks = ask(sim, stream=True, stream_options={"include_usage": True}, **kwargs)
    for chunk in chunks:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            finish = choice.finish_reason or finish
    return "".join(content), "".join(reasoning), finish, usage


def http(sim, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    url = sim.base_url.removesuffix("/v1") + path
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_non_streaming_shape_and_usage(sim):
    raw = client(sim).chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
    assert raw.headers["x-simulated"] == "1"
    result = raw.parse()
    assert result.object == "chat.completion"
    assert result.system_fingerprint == "simulated"
    assert result.model == "m"
    choice = result.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    text = choice.message.content
    assert text.startswith("<|begin_of_thought|>")
    assert "<|end_of_thought|>\n\n<|begin_of_solution|>" in text
    assert text.endswith("\\boxed{17}\n\n<|end_of_solution|>")
    for marker in ("Wait", "Alternatively", "Hmm", "Let me check", "Therefore"):
        assert marker in text
    for snippet in ("multiply both sides by the common", "the sign flips when", "recompute the"):
        assert snippet in text
    assert getattr(choice.message, "reasoning_content", None) is None
    words_in = sum(len(m["content"].split()) for m in MESSAGES)
    assert result.usage.prompt_tokens == words_in
    assert result.usage.completion_tokens == len(text.split())
    assert 150 <= result.usage.completion_tokens < 190
    assert result.usage.total_tokens == words_in + result.usage.completion_tokens


def test_content_is_deterministic_per_request_and_sample(sim):
    first = ask(sim).choices[0].message.content
    assert ask(sim).choices[0].message.content == first
    other = ask(sim, extra_body={"sample_index": 1}).choices[0].message.content
    assert other != first and other.endswith("\\boxed{17}\n\n<|end_of_solution|>")
    bare = client(sim).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )
    assert "\\boxed{0}" in bare.choices[0].message.content


def test_streaming_matches_non_streaming(sim):
    whole = ask(sim)
    content, reasoning, finish, usage = stream(sim)
    assert content == whole.choices[0].message.content
    assert reasoning == ""
    assert finish == "stop"
    assert usage.model_dump() == whole.usage.model_dump()


def test_models_list_and_max_tokens(sim):
    assert [m.id for m in client(sim).models.list()] == ["simulated-journey"]
    result = ask(sim, max_completion_tokens=20)
    assert result.choices[0].finish_reason == "length"
    assert result.usage.completion_tokens == 20


def test_capacity_answers_429_with_retry_after(sim):
    sim.configure(capacity=2, seconds_per_token=0.004)  # each request ~0.6 s

    def one(_):
        try:
            return ask(sim).choices[0].finish_reason
        except openai.RateLimitError as exc:
            return exc

    with ThreadPoolExecutor(5) as pool:
        outcomes = list(pool.map(one, range(5)))
    limited = [o for o in outcomes if isinstance(o, openai.RateLimitError)]
    assert limited and outcomes.count("stop") >= 1
    assert len(limited) + outcomes.count("stop") == 5
    assert limited[0].response.headers["retry-after"] == "1"
    assert limited[0].code == "rate_limit_exceeded"
    stats = sim.stats()
    assert stats["peak_in_flight"] <= 2
    assert stats["answered_429"] == len(limited) == stats["rejected_capacity"]
    assert stats["in_flight"] == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("rate_limit", openai.RateLimitError),
        ("server_error", openai.InternalServerError),
        ("auth", openai.AuthenticationError),
        ("drop", openai.APIConnectionError),
    ],
)
def test_error_faults_hit_the_next_request_only(sim, fault, error):
    sim.configure(faults={fault: {"next": 1}})
    with pytest.raises(error) as caught:
        ask(sim)
    if fault == "rate_limit":
        assert caught.value.response.headers["retry-after"] == "1"
    assert ask(sim).choices[0].finish_reason == "stop"
    assert sim.stats()["faults_injected"] == {fault: 1}


def test_hang_times_out_the_client_and_frees_the_slot(sim):
    sim.configure(faults={"hang": {"next": 1}})
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(sim, timeout=0.5).chat.completions.create(model="m", messages=MESSAGES)
    assert time.monotonic() - started < 3
    deadline = time.monotonic() + 3
    while sim.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.stats()["in_flight"] == 0


def test_stop_interrupts_a_hang():
    sim = SimulatedLLM(faults={"hang": {"next": 1}}).start()
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            ask(sim)
        except openai.APIError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    sim.stop()
    thread.join(timeout=3)
    assert time.monotonic() - started < 3 and not thread.is_alive()
    assert isinstance(outcome[0], openai.APIConnectionError)


def test_truncate_and_empty(sim):
    full = ask(sim).choices[0].message.content
    sim.configure(faults={"truncate": {"next": 2}, "empty": {"next": 1}})
    truncated = ask(sim).choices[0]
    assert truncated.finish_reason == "length"
    assert full.startswith(truncated.message.content) and truncated.message.content != full
    content, _, finish, _ = stream(sim)
    assert finish == "length" and content == truncated.message.content
    empty = ask(sim)
    assert empty.choices[0].message.content == ""
    assert empty.choices[0].finish_reason == "stop"
    assert empty.usage.completion_tokens == 0


def test_drop_cuts_a_stream_short(sim):
    sim.configure(faults={"drop": {"next": 1}})
    seen: list[str] = []
    finish = None
    try:
        for chunk in ask(sim, stream=True):
            for choice in chunk.choices:
                seen.append(choice.delta.content or "")
                finish = choice.finish_reason or finish
    except (openai.APIError, httpx.HTTPError):
        pass  # a cut chunked body surfaces as a protocol error: what the retry path sees
    assert finish is None
    assert "".join(seen).startswith("<|begin_of_thought|>")
    assert "<|end_of_solution|>" not in "".join(seen)


def test_rate_faults_follow_probability(sim):
    sim.configure(faults={"server_error": {"rate": 1.0}})
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(sim)
    sim.configure(faults={"server_error": None})
    assert ask(sim).choices[0].finish_reason == "stop"


def test_reasoning_content_when_configured(sim):
    sim.configure(reasoning=True)
    message = ask(sim).choices[0].message
    reasoning = getattr(message, "reasoning_content", None) or message.model_extra.get(
        "reasoning_content"
    )
    assert reasoning and "Wait" in reasoning and reasoning in message.content
    _, streamed, _, _ = stream(sim)
    assert streamed == reasoning


def test_control_endpoints(sim):
    status, config = http(sim, "POST", "/_sim/config", {"faults": {"auth": {"next": 1}}})
    assert status == 200 and config["faults"]["auth"] == {"next": 1, "rate": 0.0}
    with pytest.raises(openai.AuthenticationError):
        ask(sim)
    status, stats = http(sim, "GET", "/_sim/stats")
    assert status == 200
    assert stats["requests"] == 1 and stats["by_status"] == {"401": 1}
    assert http(sim, "POST", "/_sim/config", {"capacity": "many"})[0] == 400
    assert http(sim, "POST", "/_sim/config", {"faults": {"meteor": {"next": 1}}})[0] == 400
    assert http(sim, "POST", "/_sim/config", {"bogus": 1})[0] == 400
    status, stats = http(sim, "POST", "/_sim/reset")
    assert status == 200 and stats["requests"] == 0 and stats["by_status"] == {}


def test_api_key_is_enforced_when_set(sim):
    sim.configure(api_key="secret")
    with pytest.raises(openai.AuthenticationError):
        ask(sim)
    good = openai.OpenAI(base_url=sim.base_url, api_key="secret", max_retries=0, timeout=5)
    assert good.chat.completions.create(model="m", messages=MESSAGES).choices


def test_management_command_prints_base_url(capsys):
    stop = mock.patch(
        "devtools.management.commands.llm_simulator.time.sleep", side_effect=KeyboardInterrupt
    )
    with stop:
        call_command("llm_simulator", port=0, quiet=True)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:" in out and "/v1" in out and "Stopping." in out
