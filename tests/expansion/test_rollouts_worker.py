"""A real Celery worker (threads pool) runs a campaign's samples through the simulator;
killed mid-campaign, it loses no sample and duplicates none."""

import signal
import time

import pytest
from django.db.models import Sum

from expansion.jobs import lifecycle
from expansion.models import ProblemDifficulty, RolloutSample
from expansion.rollouts import services
from expansion.tasks import requeue_stalled_rollout_samples
from tests.expansion.test_worker_integration import start_worker, stop, wait_for
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_runs_a_campaign_and_survives_being_killed(
    endpoint, simulator, monkeypatch, settings
):
    monkeypatch.setattr(lifecycle, "HEARTBEAT_STALE_SECONDS", 3)
    settings.EXPANSION_REQUEUE_QUEUED_AFTER_SECONDS = 5
    settings.ROLLOUT_VERIFY_CATCH_UP_SECONDS = 3  # a verdict the kill cut short
    simulator.configure(seconds_per_token=0.05)  # about 3 s per answer
    for statement, answer in (("What is 12+7?", "19"), ("What is 9*8?", "72")):
        ProblemFactory(source="worker", statement=statement, reference_answer=answer)
    campaign = services.campaign_create(name="killed", endpoint=endpoint, samples_per_problem=4,
                                        filters={"source": "worker"})  # fmt: skip
    samples = RolloutSample.objects.filter(campaign=campaign)
    worker = start_worker()
    try:
        assert wait_for(lambda: samples.filter(status="running").exists(), 60)
        stop(worker, signal.SIGKILL)  # mid-campaign, no warm shutdown
        simulator.configure(seconds_per_token=0.002)
        worker = start_worker()
        deadline = time.monotonic() + 120

        def settled() -> bool:
            counted = ProblemDifficulty.objects.filter(campaign=campaign).aggregate(
                n=Sum("samples")
            )
            finished = not samples.exclude(status="succeeded").exists()
            verified = not samples.filter(verdict="pending").exists()
            return finished and verified and counted["n"] == 8

        while not settled() and time.monotonic() < deadline:
            time.sleep(2)
            requeue_stalled_rollout_samples()  # the beat task, every minute in production
    finally:
        output = stop(worker)
    assert samples.count() == 8  # no duplicate sample
    assert samples.filter(status="succeeded").count() == 8, list(samples.values("status"))
    assert set(samples.values_list("verdict", flat=True)) <= {"correct", "incorrect"}
    counted = sum(d.samples for d in ProblemDifficulty.objects.filter(campaign=campaign))
    assert counted == 8
    assert "Traceback" not in output, output
