"""Two first samples of a problem verified at once both count in its difficulty (PostgreSQL:
SQLite takes one writer at a time, so there is no race to lose)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from expansion.models import ProblemDifficulty, RolloutSample
from expansion.rollouts.verifying import difficulty_recompute
from tests.factories import CampaignFactory, ProblemFactory, SampleFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers"),
]


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def test_two_first_samples_verified_at_once_both_count():
    problem, campaign = ProblemFactory(), CampaignFactory()
    first, second = (
        SampleFactory(campaign=campaign, problem=problem, status="running") for _ in range(2)
    )
    keys = {"problem_id": problem.pk, "campaign_id": campaign.pk}
    first_counted, release = threading.Event(), threading.Event()
    errors = []

    def verify_first():
        # The first sample's verdict and its recompute in one transaction that stays open:
        # its difficulty row is created and locked, and the second sample is not seen yet.
        try:
            with transaction.atomic():
                RolloutSample.objects.filter(pk=first.pk).update(status="succeeded")
                difficulty_recompute(**keys)
                first_counted.set()
                release.wait(10)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
            first_counted.set()
        finally:
            connections.close_all()

    def verify_second():
        try:
            difficulty_recompute(**keys)  # the second sample's verdict is committed already
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    one = threading.Thread(target=verify_first)
    one.start()
    assert first_counted.wait(10)
    RolloutSample.objects.filter(pk=second.pk).update(status="succeeded")
    two = threading.Thread(target=verify_second)
    two.start()
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock() and two.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    release.set()
    one.join(10)
    two.join(10)
    assert not errors, errors
    difficulty = ProblemDifficulty.objects.get(**keys)
    assert (difficulty.samples, difficulty.verified, difficulty.correct) == (2, 2, 2)
