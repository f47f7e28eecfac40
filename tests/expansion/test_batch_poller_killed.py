"""The batch poller killed (SIGKILL) in the middle of ingesting a batch: run again, it
writes the rest, and no result is written, announced or asked for twice."""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings

from expansion import services
from expansion.batches import flow
from expansion.models import LLMBatch, LLMEndpoint, Trace
from expansion.signals import trace_succeeded
from tests.expansion.test_worker_integration import database_url

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_poller_killed_mid_ingestion_leaves_each_result_written_once(
    submitted, simulator, tmp_path
):
    simulator.configure(batch_seconds=0.5)
    endpoint = LLMEndpoint.objects.create(
        name="sim-batch", base_url=simulator.base_url, model="simulated-journey",
        is_simulated=True, max_tokens=4000, use_batches=True,
        price_input_per_million="1.00", price_output_per_million="2.00",
    )  # fmt: skip
    traces = services.traces_request(annotation=submitted, endpoint=endpoint, samples=6)
    log = tmp_path / "succeeded.log"
    env = {**os.environ, "DATABASE_URL": database_url(), "VAR_DIR": str(settings.VAR_DIR),
           "POLLER_LOG": str(log), "POLLER_PAUSE": "0.5"}  # fmt: skip
    poller = subprocess.Popen(
        [sys.executable, "-m", "tests.support.batch_poller"], cwd=settings.BASE_DIR, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def two_announced() -> bool:
        return log.exists() and len(log.read_text().split()) >= 2

    try:
        # Killed while it pauses after announcing its second job: mid-ingestion.
        deadline = time.monotonic() + 60
        while not two_announced():
            assert time.monotonic() < deadline and poller.poll() is None
            time.sleep(0.02)
    finally:
        os.killpg(poller.pid, signal.SIGKILL)
        poller.wait(timeout=10)
    written_before = set(Trace.objects.filter(status="succeeded").values_list("pk", flat=True))
    assert len(written_before) < 6, "the poller finished before it could be killed"
    (batch,) = LLMBatch.objects.all()
    assert batch.ingested_at is None

    announced = [int(line) for line in log.read_text().split()]
    trace_succeeded.connect(lambda sender, trace_id, **kw: announced.append(trace_id),
                            dispatch_uid="killed-poller-test", weak=False)  # fmt: skip
    assert batch.leased_until is not None  # the killed poller's lease...
    LLMBatch.objects.update(leased_until=batch.leased_until - flow.LEASE)  # ...expires
    try:
        flow.batches_tick()  # the next round of the beat, on another worker
    finally:
        trace_succeeded.disconnect(dispatch_uid="killed-poller-test")
    assert Trace.objects.filter(status="succeeded").count() == 6
    assert sorted(announced) == sorted(t.pk for t in traces)  # each job announced once
    assert simulator.stats()["batches"] == 1 and simulator.stats()["batch_requests"] == 6
    batch.refresh_from_db()
    assert batch.ingested_at is not None
