"""The simulated endpoint's batch API, driven by the real openai client over HTTP."""

import json
import time

import openai
import pytest

from devtools.simulator import SimulatedLLM

PROMPT = "Step 1 (attempt): add seven to both sides\nFinal answer: 17"


@pytest.fixture
def sim():
    with SimulatedLLM(target_tokens=80, batch_seconds=0.3) as s:
        yield s


@pytest.fixture
def api(sim):
    return openai.OpenAI(base_url=sim.base_url, api_key="x", max_retries=0, timeout=10)


def upload(api, count: int, **line) -> str:
    lines = [{"custom_id": f"job-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "m", "messages": [{"role": "user", "content": PROMPT}]}, **line}
             for i in range(count)]  # fmt: skip
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    return api.files.create(file=("in.jsonl", data), purpose="batch").id


def until_ended(api, batch, timeout=10.0):
    seen = [batch.status]
    deadline = time.monotonic() + timeout
    while batch.status not in ("completed", "expired", "cancelled", "failed"):
        assert time.monotonic() < deadline, seen
        time.sleep(0.02)
        batch = api.batches.retrieve(batch.id)
        seen.append(batch.status)
    return batch, seen


def lines(api, file_id):
    return [json.loads(x) for x in api.files.content(file_id).text.splitlines()]


def start(api, file_id):
    return api.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                              completion_window="24h", metadata={"ours": "1"})  # fmt: skip


def test_a_batch_progresses_and_answers_every_request(api, sim):
    batch, seen = until_ended(api, start(api, upload(api, 3)))
    assert seen[0] == "validating" and {"in_progress", "finalizing"} <= set(seen)
    assert batch.status == "completed" and batch.error_file_id is None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (3, 0)
    output = lines(api, batch.output_file_id)
    assert [x["custom_id"] for x in output] == ["job-0", "job-1", "job-2"]
    body = output[0]["response"]["body"]
    assert output[0]["response"]["status_code"] == 200 and body["object"] == "chat.completion"
    assert "\\boxed{17}" in body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] > 0
    assert api.batches.list().data[0].metadata == {"ours": "1"}
    assert sim.stats()["batches"] == 1 and sim.stats()["requests"] == 0


def test_a_batch_that_expires_half_done(api, sim):
    sim.configure(faults={"batch_expire": {"next": 1}})
    batch, _ = until_ended(api, start(api, upload(api, 4)))
    assert batch.status == "expired"
    assert [x["custom_id"] for x in lines(api, batch.output_file_id)] == ["job-0", "job-1"]
    errors = lines(api, batch.error_file_id)
    assert [(x["custom_id"], x["error"]["code"]) for x in errors] == [
        ("job-2", "batch_expired"), ("job-3", "batch_expired")
    ]  # fmt: skip
    batch, _ = until_ended(api, start(api, upload(api, 2)))  # armed for one batch only
    assert batch.status == "completed"


def test_a_batch_with_failed_lines(api, sim):
    sim.configure(faults={"batch_fail_lines": {"next": 1}})
    batch, _ = until_ended(api, start(api, upload(api, 4)))
    assert batch.status == "completed" and batch.request_counts.failed == 2
    errors = lines(api, batch.error_file_id)
    assert [x["custom_id"] for x in errors] == ["job-1", "job-3"]
    assert {x["response"]["status_code"] for x in errors} == {500}


def test_a_cancelled_batch_keeps_what_it_answered(api, sim):
    sim.configure(batch_seconds=4.0)
    batch = start(api, upload(api, 4))
    time.sleep(2.5)  # validated after 0.8 s, then 1 of 4 answered each second
    assert api.batches.cancel(batch.id).status == "cancelling"
    batch, _ = until_ended(api, batch)
    assert batch.status == "cancelled"
    answered = lines(api, batch.output_file_id)
    assert 1 <= len(answered) < 4
    assert all(x["error"]["code"] == "batch_cancelled" for x in lines(api, batch.error_file_id))


def test_bad_batch_requests_are_refused_in_words(api, sim):
    with pytest.raises(openai.BadRequestError, match="purpose must be 'batch'"):
        api.files.create(file=("in.jsonl", b"{}\n"), purpose="fine-tune")
    with pytest.raises(openai.NotFoundError):
        api.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        start(api, "file-nope")
    duplicate = upload(api, 2, custom_id="same")
    batch = start(api, duplicate)
    assert batch.status == "failed" and batch.errors.data[0].code == "duplicate_custom_id"


def test_the_batch_routes_need_the_key_when_one_is_set(api, sim):
    sim.configure(api_key="secret")
    with pytest.raises(openai.AuthenticationError):
        upload(api, 1)
