import pytest

from annotator.roles import Role
from tests.factories import AnnotationFactory, ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db

STEPS = [
    {"kind": "attempt", "text": "Guess $x=3$.", "notes": ["Try small integers first."]},
    {"kind": "reflection", "text": "$3+3=6 \\ne 8$.", "notes": []},
    {"kind": "correction", "text": "So $x=4$.", "notes": []},
]


def test_claim_returns_201_with_the_draft_then_204_when_nothing_is_left(api_as, annotator_user):
    problem = ProblemFactory()
    api = api_as(annotator_user)
    response = api.post("/api/annotations/claim/")
    assert response.status_code == 201
    body = response.json()
    assert body["problem"]["id"] == problem.id
    assert body["version"] == 1 and body["status"] == "draft" and body["lease_expires_at"]
    assert "reference_answer" not in body["problem"]  # annotators do not see it
    assert api.post("/api/annotations/claim/").status_code == 204


def test_only_annotators_claim(api_as, reviewer_user):
    ProblemFactory()
    assert api_as(reviewer_user).post("/api/annotations/claim/").status_code == 403


def test_patch_saves_a_new_version_and_a_stale_one_gets_409(api_as, annotator_user):
    ProblemFactory()
    api = api_as(annotator_user)
    draft = api.post("/api/annotations/claim/").json()
    url = f"/api/annotations/{draft['id']}/"
    saved = api.patch(url, {"version": 1, "steps": STEPS, "final_answer": "4"}, format="json")
    assert saved.status_code == 200 and saved.json()["version"] == 2
    stale = api.patch(url, {"version": 1, "steps": STEPS[:1]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2
    assert stale.json()["current"]["steps"] == STEPS
    assert "saved elsewhere" in stale.json()["detail"]


def test_patch_rejects_bad_steps_with_field_errors(api_as, annotator_user):
    ProblemFactory()
    api = api_as(annotator_user)
    draft = api.post("/api/annotations/claim/").json()
    response = api.patch(
        f"/api/annotations/{draft['id']}/",
        {"version": 1, "steps": [{"kind": "musing", "text": "x"}]},
        format="json",
    )
    assert response.status_code == 400
    assert '"musing" is not a valid choice.' in str(response.json()["steps"])
    missing = api.patch(f"/api/annotations/{draft['id']}/", {"steps": STEPS}, format="json")
    assert missing.status_code == 400 and "version" in missing.json()


def test_submit_returns_400_with_every_error_then_200(api_as, annotator_user):
    ProblemFactory(reference_answer="4")
    api = api_as(annotator_user)
    draft = api.post("/api/annotations/claim/").json()
    url = f"/api/annotations/{draft['id']}/"
    failed = api.post(url + "submit/", {}, format="json")
    assert failed.status_code == 400
    assert len(failed.json()["errors"]) == 3  # too few steps, no turn, no answer
    api.patch(url, {"version": 1, "steps": STEPS, "final_answer": "4"}, format="json")
    done = api.post(url + "submit/", {}, format="json")
    assert done.status_code == 200
    assert done.json()["status"] == "submitted" and done.json()["answer_check"] == "match"


def test_submit_with_a_wrong_answer_needs_confirmation(api_as, annotator_user):
    ProblemFactory(reference_answer="4")
    api = api_as(annotator_user)
    url = f"/api/annotations/{api.post('/api/annotations/claim/').json()['id']}/"
    api.patch(url, {"version": 1, "steps": STEPS, "final_answer": "5"}, format="json")
    refused = api.post(url + "submit/", {}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "answer_mismatch"
    confirmed = api.post(url + "submit/", {"confirm_mismatch": True}, format="json")
    assert confirmed.json()["mismatch_confirmed"] is True


def test_annotators_see_only_their_own(api_as, annotator_user, reviewer_user):
    mine = AnnotationFactory(annotator=annotator_user)
    theirs = AnnotationFactory()
    api = api_as(annotator_user)
    assert [a["id"] for a in api.get("/api/annotations/").json()["results"]] == [mine.id]
    assert api.get(f"/api/annotations/{theirs.id}/").status_code == 404
    assert api.patch(f"/api/annotations/{theirs.id}/", {"version": 1}).status_code == 404
    reviewer = api_as(reviewer_user)
    assert reviewer.get("/api/annotations/").json()["count"] == 2
    # Reviewers read but cannot write someone's annotation.
    response = reviewer.patch(f"/api/annotations/{theirs.id}/", {"version": 1}, format="json")
    assert response.status_code == 403
    # The service's refusal keeps its words through the API's one error handler.
    assert (
        response.json()["detail"] == "Only the annotator who holds this annotation can change it."
    )


def test_release_gives_the_problem_back(api_as, annotator_user):
    ProblemFactory()
    api = api_as(annotator_user)
    draft = api.post("/api/annotations/claim/").json()
    api.post(f"/api/annotations/{draft['id']}/release/")
    other = api_as(UserFactory(username="other", role=Role.ANNOTATOR))
    assert other.post("/api/annotations/claim/").status_code == 201
