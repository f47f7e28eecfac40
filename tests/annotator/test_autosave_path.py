"""The autosave path: few queries per save, no row lock, and every guarantee of a save kept
when another save or a submission lands between the save's read and its write."""

import re
import threading

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotator import services
from annotator.models import Annotation
from annotator.roles import Role
from annotator.tokens import api_token_issue
from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db

STEPS = [
    {"kind": "attempt", "text": "Guess $x=3$.", "notes": ["Try small integers first."]},
    {"kind": "correction", "text": "So $x=4$.", "notes": []},
]


@pytest.fixture
def held():
    ProblemFactory()
    return services.annotation_claim(annotator=UserFactory(role=Role.ANNOTATOR))


def _as_read(annotation):
    """The annotation as a view reads it before saving (what ``loaded`` is)."""
    return Annotation.objects.select_related("problem", "annotator").get(pk=annotation.pk)


def _save(annotation, *, version, steps=STEPS, loaded=None):
    return services.annotation_save(
        annotation_id=annotation.pk, user=annotation.annotator, base_version=version,
        steps=steps, final_answer="4", loaded=loaded,
    )  # fmt: skip


def test_a_save_that_lost_the_race_gets_409_with_the_winners_version(held):
    read_before = _as_read(held)
    _save(held, version=1)  # another tab saved after this save read the row
    with pytest.raises(services.VersionConflict) as conflict:
        _save(held, version=1, steps=STEPS[:1], loaded=read_before)
    assert conflict.value.current.version == 2 and conflict.value.current.steps == STEPS
    held.refresh_from_db()
    assert held.version == 2 and held.steps == STEPS
    assert list(held.revisions.values_list("version", flat=True)) == [2]


def test_a_submission_between_the_read_and_the_save_wins(held):
    read_before = _as_read(held)
    Annotation.objects.filter(pk=held.pk).update(status=Annotation.Status.SUBMITTED)
    with pytest.raises(services.AnnotationLocked):
        _save(held, version=1, loaded=read_before)
    held.refresh_from_db()
    assert held.version == 1 and held.steps == [] and not held.revisions.exists()


def test_a_save_answers_with_what_it_wrote(held):
    Annotation.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now())
    saved = _save(held, version=1, loaded=_as_read(held))
    stored = _as_read(held)
    for field in ("version", "steps", "final_answer", "lease_expires_at", "updated_at"):
        assert getattr(saved, field) == getattr(stored, field), field
    assert stored.lease_active and stored.revisions.get().steps == STEPS


def _statements(queries):
    """What the queries did, in order (transaction control left out: tests run inside a
    transaction). On PostgreSQL the UPDATE and the INSERT are one statement (WITH ...)."""
    sql = [query["sql"].strip() for query in queries.captured_queries]
    assert not any("FOR UPDATE" in statement for statement in sql)
    verbs = []
    for statement in sql:
        if statement.startswith("WITH"):
            verbs.append("+".join(re.findall(r"\b(UPDATE|INSERT)\b", statement)))
        elif statement.startswith(("SELECT", "INSERT", "UPDATE", "DELETE")):
            verbs.append(statement.split()[0])
    if connection.vendor != "postgresql":  # the same two statements, apart
        verbs = "|".join(verbs).replace("UPDATE|INSERT", "UPDATE+INSERT").split("|")
    return verbs


def test_an_api_save_reads_once_and_writes_once_without_locking(held):
    token = api_token_issue(user=held.annotator)
    auth = {"content_type": "application/json", "HTTP_AUTHORIZATION": f"Token {token}"}
    client, url = Client(), f"/api/annotations/{held.pk}/"
    assert client.patch(url, {"version": 1, "steps": STEPS[:1]}, **auth).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        answer = client.patch(url, {"version": 2, "steps": STEPS, "final_answer": "4"}, **auth)
    assert answer.status_code == 200
    assert answer.json()["version"] == 3 and answer.json()["steps"] == STEPS
    assert answer.json()["annotator"] == held.annotator.username
    # token, roles, the annotation; its UPDATE ... WHERE version = 2 and the revision
    assert _statements(queries) == ["SELECT", "SELECT", "SELECT", "UPDATE+INSERT"]


def test_an_editor_autosave_reads_once_and_writes_once_without_locking(held):
    client = Client()
    client.force_login(held.annotator)
    form = {"version": 1, "kind": "attempt", "text": "One", "notes": "", "final_answer": ""}
    url = f"/annotations/{held.pk}/save/"
    client.post(url, form, HTTP_HX_REQUEST="true")
    form.update(version=2, text="Two")
    with CaptureQueriesContext(connection) as queries:
        answer = client.post(url, form, HTTP_HX_REQUEST="true")
    assert answer.status_code == 200 and 'value="3"' in answer.content.decode()
    # session, user, roles, the annotation; then one UPDATE and the revision
    assert _statements(queries) == ["SELECT", "SELECT", "SELECT", "SELECT", "UPDATE+INSERT"]


@pytest.mark.django_db(transaction=True)
def test_simultaneous_saves_of_one_version_leave_one_winner_and_every_revision():
    ProblemFactory()
    held = services.annotation_claim(annotator=UserFactory(role=Role.ANNOTATOR))
    tabs = 6
    start, outcomes = threading.Barrier(tabs), []

    def save_from_tab(n):
        try:
            start.wait()
            steps = [{"kind": "attempt", "text": f"Tab {n}", "notes": []}]
            outcomes.append(_save(held, version=1, steps=steps, loaded=_as_read(held)).version)
        except services.VersionConflict as conflict:
            outcomes.append(("409", conflict.current.version))
        finally:
            connection.close()

    threads = [threading.Thread(target=save_from_tab, args=(n,)) for n in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes, key=str) == [("409", 2)] * (tabs - 1) + [2]
    held.refresh_from_db()
    revision = held.revisions.get()
    assert (held.version, revision.version, revision.steps) == (2, 2, held.steps)
