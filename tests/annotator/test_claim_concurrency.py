"""Concurrent claims on a real database: every annotator gets a different problem."""

import threading

import pytest
from django.db import close_old_connections, connection

from annotator import services
from annotator.models import Annotation
from annotator.roles import Role
from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL"
)
def test_simultaneous_claims_never_share_a_problem():
    ProblemFactory.create_batch(12)
    annotators = [UserFactory(username=f"a{n}", role=Role.ANNOTATOR) for n in range(8)]
    start = threading.Barrier(len(annotators))
    claimed, errors = [], []

    def claim(user):
        try:
            start.wait()
            for _ in range(2):
                annotation = services.annotation_claim(annotator=user)
                if annotation:
                    claimed.append(annotation.problem_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(claimed) == 12  # every problem taken, 4 claims found nothing left
    assert len(set(claimed)) == 12
    assert Annotation.objects.count() == 12


def test_claims_on_sqlite_or_postgres_serialize_without_errors():
    ProblemFactory.create_batch(3)
    annotators = [UserFactory(username=f"b{n}", role=Role.ANNOTATOR) for n in range(4)]
    results, errors = [], []

    def claim(user):
        try:
            results.append(services.annotation_claim(annotator=user))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    problems = [a.problem_id for a in results if a is not None]
    assert sorted(problems) == sorted(set(problems)) and len(problems) == 3
