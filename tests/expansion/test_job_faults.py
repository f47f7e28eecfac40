"""Jobs against a failing Redis and a failing database: an answer received is never lost,
and never paid for twice."""

import shutil
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.db.models import QuerySet

from expansion import limiter as limiter_module
from expansion import services
from expansion.jobs import engine
from expansion.models import Trace
from tests.config.test_broker_restart import _free_port, _start_redis

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch, settings):
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.01)
    settings.EXPANSION_MAX_ATTEMPTS = 3


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server program")
def test_an_answer_is_saved_when_redis_dies_before_the_slot_is_given_back(
    submitted, endpoint, simulator, monkeypatch, tmp_path
):
    port = _free_port()
    redis = _start_redis(port, tmp_path)
    try:
        shared = limiter_module._RedisLimiter(f"redis://127.0.0.1:{port}/0")
        monkeypatch.setattr(limiter_module, "_limiter", shared)
        endpoint.tokens_per_minute = 100_000  # the usage is booked after the answer, too
        endpoint.save()
        complete = engine.llm.complete

        def answer_then_lose_redis(*args, **kwargs):
            result = complete(*args, **kwargs)
            redis.kill()  # the slot's release and the usage booking now fail
            redis.wait(timeout=10)
            return result

        monkeypatch.setattr(engine.llm, "complete", answer_then_lose_redis)
        (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
        services.trace_run(trace_id=trace.pk)
    finally:
        redis.kill()
    trace.refresh_from_db()
    assert trace.status == "succeeded", trace.error_message
    assert trace.thought and trace.solution and trace.attempts == 1
    assert simulator.stats()["requests"] == 1  # paid once


@pytest.mark.parametrize("write", ["claim", "answer"])
@pytest.mark.django_db(transaction=True)  # a broken connection is closed and opened again
def test_a_database_error_when_claiming_or_saving_the_answer_is_retried(
    submitted, endpoint, simulator, monkeypatch, write
):
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    update, failures = QuerySet.update, []

    def fails(fields) -> bool:
        if write == "claim":
            return fields.get("status") == "running"
        return fields.get("status") == "succeeded"  # the answer, received and paid for

    def update_failing_once(queryset, **fields):
        if not failures and fails(fields):
            failures.append(fields)
            raise OperationalError("server closed the connection unexpectedly")
        return update(queryset, **fields)

    monkeypatch.setattr(QuerySet, "update", update_failing_once)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert failures
    assert trace.status == "succeeded", trace.error_message
    assert trace.thought and trace.attempts == 1
    assert simulator.stats()["requests"] == 1  # paid once


@pytest.mark.django_db(transaction=True)
def test_a_job_the_database_stays_away_from_is_queued_again_and_its_task_retried(
    submitted, endpoint, simulator, monkeypatch, settings, caplog
):
    from expansion import tasks
    from expansion.jobs import lifecycle

    settings.EXPANSION_DB_RETRY_SECONDS = 0
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)

    def database_gone(*args, **kwargs):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr("expansion.running.job_run", database_gone)
    retried = []

    def retry(**kwargs):
        retried.append(kwargs)
        return RuntimeError("retried")

    monkeypatch.setattr(tasks.expand_trace, "retry", retry)
    with pytest.raises(RuntimeError, match="retried"):
        tasks.expand_trace(trace.pk)
    assert retried and retried[0]["countdown"] >= 0
    assert "database unavailable" in caplog.text
    trace.refresh_from_db()
    assert trace.status == "queued" and trace.sent_at is None  # not `running` for 2 minutes
    assert lifecycle.jobs_stalled(Trace, first=90, cap=900) == [trace.pk]  # re-sent at once
    assert simulator.stats()["requests"] == 0


def _others(cursor) -> list[int]:
    cursor.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    )
    return [row[0] for row in cursor.fetchall()]


@pytest.mark.services
@pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_terminate_backend")
@pytest.mark.django_db(transaction=True)  # the job runs in its own thread and connection
def test_an_answer_streaming_in_when_the_database_connection_is_terminated_is_saved(
    submitted, endpoint, simulator
):
    simulator.configure(seconds_per_token=0.01)  # 300 tokens: about 3 s
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    worker = threading.Thread(target=services.trace_run, kwargs={"trace_id": trace.pk})
    worker.start()
    deadline = time.monotonic() + 10
    while Trace.objects.get(pk=trace.pk).progress_tokens == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    with connection.cursor() as cursor:
        pids = _others(cursor)
        assert pids  # the worker's connection
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    worker.join(timeout=60)
    trace.refresh_from_db()
    assert trace.status == "succeeded", trace.error_message
    assert trace.thought and trace.attempts == 1
    assert simulator.stats()["requests"] == 1  # paid once
