"""A worker's database connections are bounded by its pool, not by its requests in flight:
a job holds a connection only while it writes, never while it waits on the LLM."""

import threading
import time

import pytest
from django.db import connection

from expansion import services
from expansion.models import Trace

from .test_worker_integration import database_url, start_worker, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_APP = "journey-connection-test-worker"
POOL = 4
JOBS = 32


def worker_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s",
            [WORKER_APP],
        )
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="counts pg_stat_activity")
def test_a_worker_with_32_requests_in_flight_uses_at_most_its_pool_of_connections(
    submitted, endpoint, simulator
):
    endpoint.max_in_flight = JOBS
    endpoint.timeout_seconds = 60
    endpoint.save()
    # About 4.5 s per answer, streamed, so that the progress of every job is saved several
    # times while all of them are in flight.
    simulator.configure(capacity=JOBS, seconds_per_token=0.015, target_tokens=300)
    services.traces_request(annotation=submitted, endpoint=endpoint, samples=JOBS, extra=True)
    batch = Trace.objects.filter(endpoint=endpoint)
    peak = {"connections": 0, "stop": False}

    def sample() -> None:
        try:
            while not peak["stop"]:
                peak["connections"] = max(peak["connections"], worker_connections())
                time.sleep(0.05)
        finally:
            connection.close()  # this thread's own

    worker = start_worker(
        concurrency=JOBS + 8,  # more threads than jobs, as a worker sized for a busy endpoint
        DATABASE_URL=f"{database_url()}?application_name={WORKER_APP}",
        DB_POOL_MAX_SIZE=str(POOL),
    )
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        assert wait_for(lambda: not batch.exclude(status="succeeded").exists(), 120), list(
            batch.values_list("status", "error_kind", "error_message")
        )
    finally:
        peak["stop"] = True
        sampler.join()
        output = stop(worker)
    in_flight = simulator.stats()["peak_in_flight"]
    assert in_flight >= JOBS * 3 // 4, in_flight  # the jobs really were in flight together
    assert 1 <= peak["connections"] <= POOL, peak
    assert batch.count() == JOBS  # no duplicate
    assert "Traceback" not in output, output
