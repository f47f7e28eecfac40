"""Annotators submitting at once on a fresh database: every submission is answered 200
and gets its expansion (the first prompt version is created once, whoever comes first)."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from annotator import services as annotator_services
from annotator.answer_check import answers_match
from annotator.models import Annotation
from annotator.roles import Role
from expansion import tasks
from expansion.models import PromptVersion, Trace
from tests.expansion.conftest import STEPS
from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent inserts need PostgreSQL")
def test_ten_first_submissions_at_once_each_get_their_trace(settings, endpoint, monkeypatch):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    settings.LLM_SIMULATOR_URL = endpoint.base_url
    sent = []
    monkeypatch.setattr(tasks.expand_trace, "delay", sent.append)
    assert not PromptVersion.objects.exists()
    answers_match("1/2", "0.5")  # loaded once, as in a server that has been up a while
    # Widen the window between reading the latest version and inserting the next one, where
    # the submissions raced.
    compute_hash = PromptVersion.compute_hash
    monkeypatch.setattr(PromptVersion, "compute_hash",
                        lambda self: time.sleep(0.3) or compute_hash(self))  # fmt: skip
    ProblemFactory.create_batch(10)
    drafts = []
    for n in range(10):
        user = UserFactory(username=f"s{n}", role=Role.ANNOTATOR)
        draft = annotator_services.annotation_claim(annotator=user)
        annotator_services.annotation_save(annotation_id=draft.pk, user=user, base_version=1,
                                           steps=STEPS, final_answer="4")  # fmt: skip
        drafts.append((user, draft))
    start = threading.Barrier(len(drafts))
    answers, errors = [], []

    def submit(user, draft):
        try:
            api = APIClient()
            api.force_authenticate(user)
            start.wait()
            response = api.post(f"/api/annotations/{draft.pk}/submit/",
                                {"confirm_mismatch": True}, format="json")  # fmt: skip
            answers.append(response.status_code)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=pair) for pair in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and answers == [200] * 10
    assert Annotation.objects.filter(status="submitted").count() == 10
    for _, draft in drafts:
        assert Trace.objects.filter(annotation=draft).count() == 1
    assert PromptVersion.objects.count() == 1
    assert len(sent) == 10
