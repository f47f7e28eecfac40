"""Two pollers at once on PostgreSQL (two beat schedulers by mistake, or a slow round that
overlaps the next): each queued job goes into one batch, and each result is written and
announced once."""

import threading
import time

import pytest
from django.db import connection

from expansion import services
from expansion.batches import flow
from expansion.models import LLMBatch, LLMEndpoint, Trace
from expansion.signals import trace_succeeded

pytestmark = [
    pytest.mark.django_db(transaction=True),  # each poller thread has its own connection
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="needs PostgreSQL"),
]


def test_two_pollers_at_once_send_and_write_each_job_once(submitted, simulator):
    simulator.configure(batch_seconds=0.3)
    endpoint = LLMEndpoint.objects.create(
        name="sim-batch", base_url=simulator.base_url, model="simulated-journey",
        is_simulated=True, max_tokens=4000, use_batches=True,
        price_input_per_million="1.00", price_output_per_million="2.00",
    )  # fmt: skip
    traces = services.traces_request(annotation=submitted, endpoint=endpoint, samples=6)
    announced, errors = [], []
    trace_succeeded.connect(lambda sender, trace_id, **kw: announced.append(trace_id),
                            dispatch_uid="pollers-at-once", weak=False)  # fmt: skip
    start = threading.Barrier(2)

    def poller() -> None:
        try:
            start.wait()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                flow.batches_tick()
                if not Trace.objects.filter(pk__in=[t.pk for t in traces]).exclude(
                    status__in=["succeeded", "failed", "cancelled"]
                ):
                    return
                time.sleep(0.02)
        except Exception as exc:  # reported below, with the other thread's outcome
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=poller) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        trace_succeeded.disconnect(dispatch_uid="pollers-at-once")
    assert not errors
    assert Trace.objects.filter(pk__in=[t.pk for t in traces], status="succeeded").count() == 6
    assert sorted(announced) == sorted(t.pk for t in traces)  # each once
    assert simulator.stats()["batch_requests"] == 6  # no job sent in two batches
    assert sum(b.jobs for b in LLMBatch.objects.all()) == 6
    assert LLMBatch.objects.filter(ingested_at__isnull=True).count() == 0
