"""claim_first: the first candidate that its recheck accepts, in the queue's order."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.claims import claim_first
from annotator.models import Problem
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db


def test_a_candidate_the_recheck_refuses_is_passed_over():
    first, second, third = ProblemFactory.create_batch(3)
    seen = []

    def take(problem):
        seen.append(problem)
        return None if problem == first else problem.pk

    assert claim_first(Problem.objects.order_by("pk"), take) == second.pk
    assert seen == [first, second]
    assert claim_first(Problem.objects.filter(pk=first.pk), take) is None


def test_the_candidates_are_locked_with_skip_locked_where_the_database_has_it():
    ProblemFactory()
    with CaptureQueriesContext(connection) as queries:
        claim_first(Problem.objects.order_by("pk"), lambda problem: problem)
    (read,) = [q["sql"] for q in queries if "FROM" in q["sql"]]
    locks = connection.features.has_select_for_update_skip_locked
    assert ("FOR UPDATE" in read and "SKIP LOCKED" in read) == locks
