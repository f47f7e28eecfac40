"""One validator for steps: the editor page and the API refuse a bad step with one message."""

import html

import pytest

from annotator import services
from annotator.steps import StepsInvalid, clean_steps
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db

KINDS = "attempt, reflection, association, correction, backtrack, verification, conclusion"
BAD_STEPS = [
    (
        [("musing", "x")],
        f'Step 1: kind must be one of {KINDS}; "musing" is not a valid choice.',
    ),
    (
        [("attempt", "ok"), ("attempt", "y" * 20_001)],
        "Step 2: 20,001 characters; at most 20,000 per step.",
    ),
]


@pytest.fixture
def draft(annotator_user):
    ProblemFactory()
    return services.annotation_claim(annotator=annotator_user)


def _form(steps, version):
    return {
        "version": version,
        "final_answer": "",
        "kind": [kind for kind, _ in steps],
        "text": [text for _, text in steps],
        "notes": ["" for _ in steps],
    }


@pytest.mark.parametrize(("steps", "message"), BAD_STEPS)
def test_the_page_and_the_api_refuse_a_bad_step_with_the_same_message(
    client_as, api_as, annotator_user, draft, steps, message
):
    autosave = client_as(annotator_user).post(
        f"/annotations/{draft.pk}/save/", _form(steps, 1), headers={"HX-Request": "true"}
    )
    assert autosave.status_code == 400
    assert message in html.unescape(autosave.content.decode())

    submit = client_as(annotator_user).post(f"/annotations/{draft.pk}/submit/", _form(steps, 1))
    assert submit.status_code == 400
    assert message in html.unescape(submit.content.decode())

    api = api_as(annotator_user).patch(
        f"/api/annotations/{draft.pk}/",
        {"version": 1, "steps": [{"kind": k, "text": t, "notes": []} for k, t in steps]},
        format="json",
    )
    assert api.status_code == 400
    assert api.json()["steps"] == [message]

    with pytest.raises(StepsInvalid) as refused:
        clean_steps([{"kind": kind, "text": text, "notes": []} for kind, text in steps])
    assert refused.value.messages == [message]
    draft.refresh_from_db()
    assert draft.version == 1 and draft.steps == []


def test_the_api_refuses_a_long_final_answer_as_the_service_does(api_as, annotator_user, draft):
    response = api_as(annotator_user).patch(
        f"/api/annotations/{draft.pk}/", {"version": 1, "final_answer": "9" * 2_001}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["final_answer"] == ["The final answer is longer than 2,000 characters."]
