"""htmx error answers of the editor say where they go, so the editor around them survives."""

import pytest

from annotator import services
from tests.factories import ProblemFactory

from .test_workspace_views import HTMX, form

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(annotator_user):
    ProblemFactory(reference_answer="4")
    return services.annotation_claim(annotator=annotator_user)


def test_a_refused_step_change_only_updates_the_save_status(client_as, annotator_user, held):
    client = client_as(annotator_user)
    data = form([("attempt", "x" * 20_001, "")], 1, op="add")
    response = client.post(f"/annotations/{held.pk}/steps/", data, headers=HTMX)
    assert response.status_code == 400
    assert response["HX-Reswap"] == "none"  # the steps on screen are not replaced
    assert "at most 20,000 per step" in response.content.decode()


def test_a_refused_submit_answers_into_the_messages_beside_submit(client_as, annotator_user, held):
    client = client_as(annotator_user)
    url = f"/annotations/{held.pk}/submit/"
    response = client.post(url, form([("attempt", "x", "")], 1), headers=HTMX)
    assert response.status_code == 400
    assert response["HX-Retarget"] == "#submit-messages"
    body = response.content.decode()
    assert "Record at least 3 steps" in body and 'name="text"' not in body
    assert 'id="version" value="2"' in body  # the save went through; the page learns the version

    steps = [("attempt", "x=3", ""), ("reflection", "3+3 is 6", ""), ("correction", "x=5", "")]
    response = client.post(url, form(steps, 2, answer="5"), headers=HTMX)
    assert response["HX-Retarget"] == "#submit-messages"
    assert 'name="confirm_mismatch"' in response.content.decode()
