"""Expansion jobs sent as batches through the real openai client to the simulated
endpoint's /v1/files and /v1/batches: lifecycle, salvage, exactly once, batch price."""

import time
from decimal import Decimal

import pytest

from expansion import services
from expansion.batches import flow
from expansion.models import LLMBatch, LLMEndpoint, Trace
from expansion.signals import trace_succeeded

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch_endpoint(db, simulator):
    simulator.configure(batch_seconds=0.4)
    return LLMEndpoint.objects.create(
        name="sim-batch", base_url=simulator.base_url, model="simulated-journey",
        is_simulated=True, max_tokens=4000, timeout_seconds=5, use_batches=True,
        price_input_per_million="1.00", price_output_per_million="2.00",
    )  # fmt: skip


@pytest.fixture
def succeeded_signals():
    received = []

    def note(sender, trace_id, **kwargs):
        received.append(trace_id)

    trace_succeeded.connect(note, dispatch_uid="test-batches")
    yield received
    trace_succeeded.disconnect(dispatch_uid="test-batches")


def queue(annotation, endpoint, samples):
    return services.traces_request(annotation=annotation, endpoint=endpoint, samples=samples)


def tick_until_finished(traces, timeout=20.0) -> list[str]:
    """Run the poller's rounds until every job has finished; the batch states seen."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        flow.batches_tick()
        seen += [b.status for b in LLMBatch.objects.all()]
        if not Trace.objects.filter(pk__in=[t.pk for t in traces]).exclude(
            status__in=["succeeded", "failed", "cancelled"]
        ):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"jobs still unfinished; batches seen in {sorted(set(seen))}")


def test_a_batch_goes_through_its_states_into_checked_traces_at_the_batch_price(
    submitted, batch_endpoint, simulator, client_as, reviewer_user, succeeded_signals
):
    simulator.configure(batch_seconds=8.0)  # long enough to look at it in each state
    traces = queue(submitted, batch_endpoint, samples=3)
    (batch,) = flow.batches_submit_queued()
    assert batch.provider_id.startswith("batch_sim_") and batch.jobs == 3
    assert batch.status == "validating"
    reviewer = client_as(reviewer_user)
    page = reviewer.get(f"/traces/{traces[0].pk}/progress/")
    assert f"in batch {batch.provider_id}, validating" in page.content.decode()
    listing = reviewer.get("/traces/").content.decode()
    assert listing.count(f"in batch {batch.provider_id}") == 3

    deadline = time.monotonic() + 10
    while batch.status == "validating":
        assert time.monotonic() < deadline
        time.sleep(0.05)
        flow.batch_poll(batch)
    assert batch.status == "in_progress"
    page = reviewer.get(f"/traces/{traces[0].pk}/progress/").content.decode()
    assert f"in batch {batch.provider_id}, in_progress (" in page and "of 3 answered" in page
    assert Trace.objects.filter(status="running").count() == 3

    seen = tick_until_finished(traces)
    assert "completed" in seen
    stats = simulator.stats()
    assert stats["batches"] == 1 and stats["batch_requests"] == 3
    assert stats["requests"] == 0  # nothing was streamed
    for trace in traces:
        trace.refresh_from_db()
        assert trace.status == "succeeded", trace.error_message
        assert trace.batch_id == batch.pk and trace.attempts == 1
        assert trace.thought and trace.solution and trace.checks["matches_reference"] is True
        assert (
            trace.usage_source == "provider" and trace.response["batch"]["id"] == batch.provider_id
        )
        full = (Decimal(trace.prompt_tokens) * 1 + Decimal(trace.completion_tokens) * 2) / 10**6
        assert trace.cost == (full / 2).quantize(Decimal("0.000001"))
        assert trace.profile.tokens == trace.completion_tokens  # the signal's receivers ran
    assert sorted(succeeded_signals) == sorted(t.pk for t in traces)
    # The samples of one record are still different draws.
    assert len({t.thought for t in traces}) == 3
    page = reviewer.get(f"/traces/{traces[0].pk}/progress/").content.decode()
    assert "in batch" not in page and "succeeded" in page
    flow.batches_tick()  # a later round sends nothing again
    assert simulator.stats()["batches"] == 1


def test_an_expired_batch_keeps_its_answers_and_sends_the_rest_again(
    submitted, batch_endpoint, simulator, succeeded_signals
):
    simulator.configure(faults={"batch_expire": {"next": 1}})
    traces = queue(submitted, batch_endpoint, samples=4)
    tick_until_finished(traces)
    first, second = LLMBatch.objects.order_by("pk")
    assert first.status == "expired" and second.status == "completed" and second.jobs == 2
    for trace in traces:
        trace.refresh_from_db()
    assert all(t.status == "succeeded" for t in traces)
    assert [t.batch_id for t in traces] == [first.pk, first.pk, second.pk, second.pk]
    assert [t.attempts for t in traces] == [1, 1, 2, 2]
    assert simulator.stats()["batch_requests"] == 6  # 4, then the 2 left unanswered
    assert sorted(succeeded_signals) == sorted(t.pk for t in traces)


def test_failed_lines_of_a_batch_are_sent_again(submitted, batch_endpoint, simulator):
    simulator.configure(faults={"batch_fail_lines": {"next": 1}})
    traces = queue(submitted, batch_endpoint, samples=4)
    flow.batches_submit_queued()
    deadline = time.monotonic() + 10
    while not Trace.objects.filter(status="queued", error_kind="server_error").exists():
        assert time.monotonic() < deadline
        flow.batches_tick()  # polls; the next round would resend
        time.sleep(0.05)
    waiting = Trace.objects.get(pk=traces[1].pk)
    assert "answered this request with 500" in waiting.error_message
    assert "next batch (attempt 2 of 3)" in waiting.error_message
    tick_until_finished(traces)
    first, second = LLMBatch.objects.order_by("pk")
    assert first.status == "completed" and first.request_counts["failed"] == 2
    for trace in traces:
        trace.refresh_from_db()
        assert trace.status == "succeeded" and not trace.error_message
    assert [t.batch_id for t in traces] == [first.pk, second.pk, first.pk, second.pk]
    assert simulator.stats()["batch_requests"] == 6


def test_a_job_no_batch_answers_fails_with_the_reason(
    submitted, batch_endpoint, simulator, settings, client_as, reviewer_user
):
    settings.LLM_BATCH_MAX_ATTEMPTS = 2
    simulator.configure(faults={"batch_expire": {"next": 5}})  # one job: half of it is none
    (trace,) = queue(submitted, batch_endpoint, samples=1)
    tick_until_finished([trace])
    trace.refresh_from_db()
    assert trace.status == "failed" and trace.error_kind == "timeout"
    assert "expired before answering this request" in trace.error_message
    assert "gave up after 2 batches" in trace.error_message
    page = client_as(reviewer_user).get(f"/traces/{trace.pk}/progress/").content.decode()
    assert "gave up after 2 batches" in page
    assert simulator.stats()["batches"] == 2


def test_a_cancelled_batch_is_salvaged(submitted, batch_endpoint, simulator):
    simulator.configure(batch_seconds=6.0)
    traces = queue(submitted, batch_endpoint, samples=4)
    (batch,) = flow.batches_submit_queued()
    deadline = time.monotonic() + 10
    while batch.request_counts.get("completed", 0) < 1:  # part of it answered
        assert time.monotonic() < deadline
        time.sleep(0.05)
        flow.batch_poll(batch)
    flow.batch_cancel(batch_id=batch.pk)
    tick_until_finished(traces, timeout=40)  # the resent ones take a batch of 6 s too
    batch.refresh_from_db()
    assert batch.status == "cancelled"
    answered = Trace.objects.filter(batch=batch, status="succeeded").count()
    assert 1 <= answered < 4
    assert Trace.objects.filter(status="succeeded").count() == 4
    assert simulator.stats()["batch_requests"] == 4 + (4 - answered)


class Killed(BaseException):
    """What a killed poller leaves: its loop stopped between two jobs, nothing cleaned up."""


def test_an_interrupted_ingestion_run_again_writes_each_result_once(
    submitted, batch_endpoint, simulator, monkeypatch, succeeded_signals
):
    traces = queue(submitted, batch_endpoint, samples=4)
    (batch,) = flow.batches_submit_queued()
    real, calls = flow._ingest_one, []

    def dies_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise Killed()
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(flow, "_ingest_one", dies_after_two)
    deadline = time.monotonic() + 10
    with pytest.raises(Killed):
        while time.monotonic() < deadline:
            flow.batch_poll(batch)
            time.sleep(0.05)
    assert Trace.objects.filter(status="succeeded").count() == 2
    assert LLMBatch.objects.get(pk=batch.pk).ingested_at is None
    monkeypatch.setattr(flow, "_ingest_one", real)
    tick_until_finished(traces)
    assert Trace.objects.filter(status="succeeded").count() == 4
    assert sorted(succeeded_signals) == sorted(t.pk for t in traces)  # each once
    assert simulator.stats()["batch_requests"] == 4  # nothing asked for twice
    assert LLMBatch.objects.get(pk=batch.pk).ingested_at is not None


def test_a_job_cancelled_in_a_batch_is_never_written(submitted, batch_endpoint, simulator):
    first, second = queue(submitted, batch_endpoint, samples=2)
    flow.batches_submit_queued()
    assert services.trace_cancel(trace_id=first.pk)
    tick_until_finished([first, second])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "cancelled" and not first.content
    assert second.status == "succeeded"


def test_batch_jobs_get_no_worker_messages(submitted, batch_endpoint, monkeypatch):
    sent = []
    monkeypatch.setattr("expansion.tasks.expand_trace.delay", sent.append)
    queue(submitted, batch_endpoint, samples=2)
    Trace.objects.update(sent_at=None)  # queued with no message on record: due at once
    assert services.traces_resend() == 0 and sent == []
    (batch,) = flow.batches_submit_queued()
    Trace.objects.update(heartbeat_at=None)  # in the batch, but would look stalled
    assert services.traces_resend() == 0 and sent == []
    assert set(Trace.objects.values_list("run_id", flat=True)) == {batch.run_id}


def test_a_refused_key_fails_the_batch_jobs_with_the_reason(
    submitted, batch_endpoint, simulator, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    simulator.configure(api_key="right")
    batch_endpoint.api_key_env = "OPENAI_API_KEY"
    batch_endpoint.save()
    (trace,) = queue(submitted, batch_endpoint, samples=1)
    (batch,) = flow.batches_submit_queued()
    trace.refresh_from_db()
    assert batch.status == "failed" and trace.status == "failed" and trace.error_kind == "auth"
    assert "refused the key" in trace.error_message


def test_the_batch_discount_prices_a_batched_request():
    endpoint = LLMEndpoint(
        price_input_per_million=Decimal("2"),
        price_output_per_million=Decimal("8"),
        batch_discount_percent=50,
    )
    assert endpoint.cost(1_000_000, 1_000_000) == Decimal(10)
    assert endpoint.cost(1_000_000, 1_000_000, batched=True) == Decimal(5)
    endpoint.batch_discount_percent = 0
    assert endpoint.cost(1_000_000, 1_000_000, batched=True) == Decimal(10)


def test_admins_mark_an_endpoint_for_batches(api_as, admin_user, client_as, batch_endpoint):
    api = api_as(admin_user)
    created = api.post("/api/endpoints/", {"name": "openai", "base_url": "https://api.openai.com/v1",
                       "model": "gpt-4o-mini", "use_batches": True}, format="json")  # fmt: skip
    assert created.status_code == 201, created.json()
    assert created.json()["use_batches"] is True and created.json()["batch_discount_percent"] == 50
    bad = api.patch(f"/api/endpoints/{created.json()['id']}/", {"batch_discount_percent": 150},
                    format="json")  # fmt: skip
    assert bad.status_code == 400 and "batch_discount_percent" in bad.json()
    document = api.get("/api/schema/", {"format": "json"}).json()
    schema = document["components"]["schemas"]
    assert {"use_batches", "batch_discount_percent"} <= set(schema["LLMEndpoint"]["properties"])
    trace = document["paths"]["/api/traces/{id}/"]["get"]["responses"]["200"]["content"]
    name = trace["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert "batch_state" in schema[name]["properties"]
    admin = client_as(admin_user)
    assert admin.get("/admin/expansion/llmbatch/").status_code == 200
    change = admin.get(f"/admin/expansion/llmendpoint/{batch_endpoint.pk}/change/").content
    assert b"use_batches" in change and b"batch_discount_percent" in change


def test_the_trace_api_says_which_batch_a_job_is_in(
    submitted, batch_endpoint, api_as, reviewer_user
):
    (trace,) = queue(submitted, batch_endpoint, samples=1)
    (batch,) = flow.batches_submit_queued()
    api = api_as(reviewer_user)
    detail = api.get(f"/api/traces/{trace.pk}/").json()
    assert detail["status"] == "running" and detail["batch"] == batch.pk
    assert detail["batch_state"]["provider_id"] == batch.provider_id
    assert detail["batch_state"]["status"] == "validating"


def test_a_batch_whose_worker_stopped_before_the_provider_had_it(
    submitted, batch_endpoint, simulator, monkeypatch
):
    from expansion.batches import client

    traces = queue(submitted, batch_endpoint, samples=2)

    def stops(*args, **kwargs):
        raise Killed()

    monkeypatch.setattr(client, "create", stops)  # uploaded, then the worker is gone
    with pytest.raises(Killed):
        flow.batches_submit_queued()
    monkeypatch.undo()
    (lost,) = LLMBatch.objects.all()
    assert lost.status == "preparing" and lost.input_file_id
    flow.batches_tick()  # too soon to tell: its worker may still be uploading
    assert Trace.objects.filter(run_id=lost.run_id).count() == 2
    LLMBatch.objects.update(created_at=lost.created_at - flow.PREPARING_STALE)
    tick_until_finished(traces)
    lost.refresh_from_db()
    assert lost.status == "failed" and "stopped before the provider had it" in lost.error_message
    assert Trace.objects.filter(status="succeeded").exclude(batch=lost).count() == 2
    assert simulator.stats()["batches"] == 1  # the provider never had the lost one


def test_a_batch_created_but_not_recorded_is_adopted(submitted, batch_endpoint, simulator):
    traces = queue(submitted, batch_endpoint, samples=2)
    (batch,) = flow.batches_submit_queued()
    LLMBatch.objects.filter(pk=batch.pk).update(
        status="preparing", provider_id="", created_at=batch.created_at - flow.PREPARING_STALE
    )  # as if the worker stopped just after batches.create
    tick_until_finished(traces)
    batch.refresh_from_db()
    assert batch.status == "completed" and batch.provider_id
    assert Trace.objects.filter(batch=batch, status="succeeded").count() == 2
    assert simulator.stats()["batches"] == 1


def test_an_admin_cancels_a_batch_at_the_provider(
    submitted, batch_endpoint, simulator, client_as, admin_user
):
    simulator.configure(batch_seconds=5.0)
    queue(submitted, batch_endpoint, samples=1)
    (batch,) = flow.batches_submit_queued()
    response = client_as(admin_user).post(
        "/admin/expansion/llmbatch/",
        {"action": "cancel_at_provider", "_selected_action": [batch.pk]},
        follow=True,
    )
    assert "cancelling" in response.content.decode()
    batch.refresh_from_db()
    assert batch.status == "cancelling"


def test_a_batch_another_poller_holds_is_passed_over_until_its_lease_ends(
    submitted, batch_endpoint, simulator
):
    traces = queue(submitted, batch_endpoint, samples=2)
    (batch,) = flow.batches_submit_queued()
    held = LLMBatch.objects.get(pk=batch.pk)
    assert flow.batch_lease(held)  # another worker is polling it
    assert not flow.batch_lease(LLMBatch.objects.get(pk=batch.pk))
    assert flow.batches_tick()["skipped"] == 1
    assert Trace.objects.filter(status="succeeded").count() == 0
    flow.batch_release(held)
    tick_until_finished(traces)
    assert Trace.objects.filter(status="succeeded").count() == 2
    assert simulator.stats()["batch_requests"] == 2
