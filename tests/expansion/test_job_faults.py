"""Jobs against a failing Redis and a failing database: an answer received is never lost,
and never paid for twice."""

import shutil

import pytest

from expansion import limiter as limiter_module
from expansion import services
from expansion.jobs import engine
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
