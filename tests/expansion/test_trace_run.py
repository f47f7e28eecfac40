"""Running expansion jobs with the real openai client against the simulated endpoint."""

import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from expansion import services
from expansion.jobs import engine, lifecycle
from expansion.models import Trace

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch, settings):
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.01)
    settings.EXPANSION_MAX_ATTEMPTS = 3


def queue(annotation, endpoint, **kwargs):
    return services.traces_request(annotation=annotation, endpoint=endpoint, **kwargs)


def test_a_job_produces_a_checked_trace_with_usage_and_cost(submitted, endpoint, simulator):
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded", trace.error_message
    assert trace.is_simulated and trace.attempts == 1
    assert trace.thought and trace.solution and trace.finish_reason == "stop"
    assert trace.model_reported == "simulated-journey"
    assert trace.request["messages"][0]["role"] == "system"
    assert trace.request["temperature"] == endpoint.temperature
    assert trace.response["usage"]["completion_tokens"] == trace.completion_tokens
    expected = (Decimal(trace.prompt_tokens) * 1 + Decimal(trace.completion_tokens) * 2) / 10**6
    assert trace.cost == expected.quantize(Decimal("0.000001"))
    assert trace.checks["split_ok"] is True
    assert trace.checks["boxed_answer"] == "4" and trace.checks["matches_reference"] is True
    assert len(trace.checks["coverage"]) == 3
    assert trace.checks["target_max"] == trace.prompt.target_tokens_max
    assert trace.checks["too_long"] is False
    assert simulator.stats()["requests"] == 1
    # The analytics profile it once, from the same text.
    assert trace.profile.tokens == trace.completion_tokens and trace.profile.answer_match
    assert trace.profile.lines == len([x for x in trace.thought.splitlines() if x.strip()]) + len(
        [x for x in trace.solution.splitlines() if x.strip()]
    )


def test_the_same_job_is_never_run_twice(submitted, endpoint, simulator):
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    services.trace_run(trace_id=trace.pk)  # a redelivered message
    assert queue(submitted, endpoint) == [trace]  # the same request is the same job
    assert simulator.stats()["requests"] == 1
    assert Trace.objects.count() == 1


def test_the_samples_of_one_record_differ(submitted, endpoint, simulator):
    first, second = queue(submitted, endpoint, samples=2)
    for trace in (first, second):
        services.trace_run(trace_id=trace.pk)
        trace.refresh_from_db()
    assert first.status == second.status == "succeeded"
    assert first.thought != second.thought  # each sample is its own draw
    assert first.checks["matches_reference"] and second.checks["matches_reference"]


def test_extra_samples_are_new_jobs(submitted, endpoint):
    first = queue(submitted, endpoint, samples=2)
    more = queue(submitted, endpoint, samples=2, extra=True)
    assert [t.sample_index for t in first + more] == [0, 1, 2, 3]
    assert len({t.idempotency_key for t in first + more}) == 4


def test_a_job_whose_worker_died_is_taken_over(submitted, endpoint, simulator):
    (trace,) = queue(submitted, endpoint)
    Trace.objects.filter(pk=trace.pk).update(
        status="running", run_id="dead", heartbeat_at=timezone.now() - timezone.timedelta(hours=1)
    )
    assert services.traces_stalled() == [trace.pk]
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded"


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_a_job_waiting_long_for_its_first_token_is_not_taken_over(
    submitted, endpoint, simulator, monkeypatch
):
    monkeypatch.setattr(lifecycle, "HEARTBEAT_STALE_SECONDS", 1)
    monkeypatch.setattr(lifecycle, "HEARTBEAT_EVERY", 0.2)
    monkeypatch.setattr(lifecycle, "heartbeats", lifecycle.Heartbeats())
    simulator.configure(time_to_first_token=2.5)  # no chunk, so no progress save, for 2.5 s
    (trace,) = queue(submitted, endpoint)
    worker = threading.Thread(target=services.trace_run, kwargs={"trace_id": trace.pk})
    worker.start()
    time.sleep(2.0)  # twice the time after which a silent job counts as abandoned
    stalled = services.traces_stalled()
    services.trace_run(trace_id=trace.pk)  # the periodic requeue's message, meanwhile
    worker.join(timeout=30)
    trace.refresh_from_db()
    assert stalled == []
    assert trace.status == "succeeded" and trace.attempts == 1
    assert simulator.stats()["requests"] == 1  # paid once


def test_a_job_with_a_live_worker_is_left_alone(submitted, endpoint, simulator):
    (trace,) = queue(submitted, endpoint)
    Trace.objects.filter(pk=trace.pk).update(status="running", heartbeat_at=timezone.now())
    services.trace_run(trace_id=trace.pk)
    assert simulator.stats()["requests"] == 0


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "drop", "empty"])
def test_passing_faults_are_retried(submitted, endpoint, simulator, fault):
    simulator.configure(faults={fault: {"next": 1}}, retry_after=0)
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded" and trace.attempts == 2


@pytest.mark.parametrize(
    ("fault", "kind", "attempts", "message"),
    [
        ("auth", "auth", 1, "refused the key"),
        ("truncate", "truncated", 1, "max_tokens"),
        ("server_error", "server_error", 3, "gave up after 3 attempts"),
        ("rate_limit", "rate_limited", 3, "429"),
        ("empty", "empty", 3, "no text 3 times"),
        ("hang", "timeout", 3, "did not answer in time"),
    ],
)
def test_failures_end_in_a_visible_failed_state(
    submitted, endpoint, simulator, fault, kind, attempts, message
):
    endpoint.timeout_seconds = 1
    endpoint.save()
    simulator.configure(faults={fault: {"next": 10}}, retry_after=0)
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "failed"
    assert trace.error_kind == kind and trace.attempts == attempts
    assert message in trace.error_message
    assert trace.flag_truncated is (kind == "truncated")  # the analytics list them by it


def test_a_missing_key_fails_at_once_without_calling(
    submitted, endpoint, simulator, monkeypatch, settings
):
    settings.LLM_API_KEY_NAMES = frozenset({"NO_SUCH_KEY"})
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    endpoint.api_key_env = "NO_SUCH_KEY"
    endpoint.save()
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.error_kind == "auth" and "NO_SUCH_KEY" in trace.error_message
    assert simulator.stats()["requests"] == 0


@pytest.mark.parametrize("name", ["SECRET_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY"])
def test_a_key_variable_not_on_the_allow_list_is_never_sent(
    submitted, endpoint, simulator, monkeypatch, name
):
    monkeypatch.setenv(name, "a-secret-of-someone-else")
    endpoint.api_key_env = name  # e.g. written to the database directly
    endpoint.save()
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.error_kind == "auth" and "add it to LLM_API_KEY_NAMES" in trace.error_message
    assert simulator.stats()["requests"] == 0


def test_reasoning_returned_separately_is_kept(submitted, endpoint, simulator):
    simulator.configure(reasoning=True)
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded" and trace.reasoning


def test_reasoning_without_an_answer_is_never_a_success(submitted, endpoint, simulator):
    simulator.configure(reasoning=True, faults={"empty": {"next": 10}})
    (trace,) = queue(submitted, endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "failed" and trace.error_kind == "empty" and trace.attempts == 3
    assert "reasoning but no answer text" in trace.error_message
    assert trace.reasoning  # what was paid for is kept


def test_a_cancelled_job_stops(submitted, endpoint, simulator):
    (trace,) = queue(submitted, endpoint)
    assert services.trace_cancel(trace_id=trace.pk)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "cancelled" and simulator.stats()["requests"] == 0


def test_submitting_queues_the_configured_number_of_samples(
    annotator_user, endpoint, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from annotator import services as annotator_services
    from expansion import tasks
    from tests.expansion.conftest import STEPS
    from tests.factories import ProblemFactory

    settings.EXPANSION_SAMPLES = 2
    sent = []
    monkeypatch.setattr(tasks.expand_trace, "delay", sent.append)
    ProblemFactory()
    draft = annotator_services.annotation_claim(annotator=annotator_user)
    annotator_services.annotation_save(
        annotation_id=draft.pk, user=annotator_user, base_version=1, steps=STEPS, final_answer="4"
    )
    with django_capture_on_commit_callbacks(execute=True):
        annotator_services.annotation_submit(
            annotation_id=draft.pk, user=annotator_user, confirm_mismatch=True
        )
    traces = list(Trace.objects.filter(annotation=draft).order_by("sample_index"))
    assert [t.sample_index for t in traces] == [0, 1]
    assert all(t.status == "queued" and t.prompt.is_active for t in traces)
    assert sent == [t.pk for t in traces]  # queued once each, after the commit


@pytest.mark.django_db(transaction=True)  # the job runs in its own thread and connection
def test_a_running_job_cancelled_through_the_api_stops_and_is_not_retried(
    submitted, endpoint, simulator, api_as, reviewer_user, annotator_user
):
    # 300 tokens: about 9 s, several progress saves (a cancel is seen at the next one)
    simulator.configure(seconds_per_token=0.03)
    (trace,) = queue(submitted, endpoint)
    worker = threading.Thread(target=services.trace_run, kwargs={"trace_id": trace.pk})
    worker.start()
    deadline = time.monotonic() + 10
    while Trace.objects.get(pk=trace.pk).progress_tokens == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert api_as(annotator_user).post(f"/api/traces/{trace.pk}/cancel/").status_code == 403
    cancelled = api_as(reviewer_user).post(f"/api/traces/{trace.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    worker.join(timeout=10)
    assert not worker.is_alive()  # it stopped well before the answer's end
    trace.refresh_from_db()
    assert trace.status == "cancelled" and trace.attempts == 1 and not trace.thought
    assert simulator.stats()["requests"] == 1 and simulator.stats()["completed"] == 0
    again = api_as(reviewer_user).post(f"/api/traces/{trace.pk}/cancel/")
    assert again.status_code == 409 and again.json()["status"] == "cancelled"
    assert "only queued or running jobs" in again.json()["detail"]


def test_reviewers_cancel_a_queued_job_from_its_page(submitted, endpoint, client_as, reviewer_user):
    (trace,) = queue(submitted, endpoint)
    client = client_as(reviewer_user)
    page = client.get(f"/traces/{trace.pk}/").content.decode()
    assert "Cancel this job" in page
    assert client.get(f"/traces/{trace.pk}/cancel/").status_code == 405
    response = client.post(f"/traces/{trace.pk}/cancel/", follow=True)
    assert "is cancelled" in response.content.decode()
    trace.refresh_from_db()
    assert trace.status == "cancelled"
    assert "Cancel this job" not in client.get(f"/traces/{trace.pk}/").content.decode()
    again = client.post(f"/traces/{trace.pk}/cancel/", follow=True).content.decode()
    assert "nothing to cancel" in again


@pytest.mark.django_db(transaction=True)  # the second job runs in its own thread
def test_a_tokens_per_minute_limit_counts_the_tokens_used_not_the_most_booked(
    submitted, endpoint, simulator, monkeypatch
):
    from expansion import limiter as limiter_module

    monkeypatch.setattr(limiter_module, "_limiter", limiter_module._LocalLimiter())
    endpoint.tokens_per_minute = 6_000  # one booking of max_tokens (4,000) + prompt fits
    endpoint.save()
    first, second = queue(submitted, endpoint, samples=2)
    services.trace_run(trace_id=first.pk)
    worker = threading.Thread(target=services.trace_run, kwargs={"trace_id": second.pk})
    worker.start()
    worker.join(timeout=15)  # without settling, it would wait for the minute to pass
    second.refresh_from_db()
    assert second.status == "succeeded"
    assert first.pk != second.pk and simulator.stats()["completed"] == 2


def test_truncated_failures_are_listed_by_the_analytics_truncated_filter(
    submitted, endpoint, simulator, client_as, reviewer_user
):
    truncated, whole = queue(submitted, endpoint, samples=2)
    simulator.configure(faults={"truncate": {"next": 1}})
    services.trace_run(trace_id=truncated.pk)
    services.trace_run(trace_id=whole.pk)
    body = client_as(reviewer_user).get("/analytics/traces/", {"flag": "truncated"})
    body = body.content.decode()
    assert f'href="/traces/{truncated.pk}/"' in body
    assert f'href="/traces/{whole.pk}/"' not in body
