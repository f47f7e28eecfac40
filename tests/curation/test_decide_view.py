"""The decide and undo views: a bad value answers 400 with a message; htmx gets fragments."""

import pytest

from annotator.roles import Role
from curation.models import ReviewDecision, TraceReview
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trace():
    return TraceFactory()


def post(client, trace, data, **headers):
    return client.post(f"/review/{trace.pk}/decide/", data, **headers)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"decision": "reexpand", "prompt_version": "abc"},
            "Prompt version: Choose a prompt version by its id (a number).",
        ),
        ({"decision": "reexpand", "endpoint": "1.5"}, "Endpoint: Choose an endpoint by its id"),
        (
            {"decision": "reexpand", "prompt_version": "99999"},
            "Prompt version: There is no prompt version 99999.",
        ),
        (
            {"decision": "reexpand", "endpoint": "99999"},
            "Endpoint: There is no active endpoint 99999.",
        ),
        ({"decision": "maybe"}, "Decision: &quot;maybe&quot; is not a valid choice."),
        ({"decision": "undo"}, "Decision: &quot;undo&quot; is not a valid choice."),
        ({}, "Decision: This field is required."),
        ({"decision": "reject", "reason": "bored"}, "Reason: &quot;bored&quot; is not a valid"),
        ({"decision": "reject"}, "Rejecting needs a reason code."),
    ],
)
def test_a_bad_value_answers_400_with_a_message(client_as, reviewer_user, trace, data, message):
    client = client_as(reviewer_user)
    page = post(client, trace, data)
    assert page.status_code == 400 and message in page.content.decode()
    assert 'id="decisions"' in page.content.decode()  # the review page, ready to decide again
    fragment = post(client, trace, data, **HTMX)
    assert fragment.status_code == 400 and message in fragment.content.decode()
    assert fragment["HX-Retarget"] == "#decision-messages"
    assert "<html" not in fragment.content.decode()
    assert ReviewDecision.objects.count() == 0


def test_an_inactive_endpoint_is_refused(client_as, reviewer_user, trace):
    trace.endpoint.is_active = False
    trace.endpoint.save()
    response = post(client_as(reviewer_user), trace, {"decision": "reexpand",
                                                     "endpoint": trace.endpoint.pk})  # fmt: skip
    assert response.status_code == 400
    assert "There is no active endpoint" in response.content.decode()


def test_an_htmx_approval_offers_an_undo_and_the_undo_reopens_the_trace(
    client_as, reviewer_user, trace
):
    client = client_as(reviewer_user)
    response = post(client, trace, {"decision": "approve"}, **HTMX)
    body = response.content.decode()
    record = ReviewDecision.objects.get()
    assert response.status_code == 200 and f"/review/decisions/{record.pk}/undo/" in body
    assert 'data-undo-seconds="5"' in body and "approved" in body
    assert TraceReview.objects.get(trace=trace).status == "approved"

    response = client.post(f"/review/decisions/{record.pk}/undo/", **HTMX)
    assert response["HX-Redirect"] == f"/review/{trace.pk}/"
    page = client.get(f"/review/{trace.pk}/").content.decode()
    assert "your approve was undone" in page and "<strong>Undo</strong> of the approve" in page
    assert TraceReview.objects.get(trace=trace).status == "pending"


def test_an_undo_refused_says_why(client_as, reviewer_user, trace):
    post(client_as(reviewer_user), trace, {"decision": "approve"})
    record = ReviewDecision.objects.get()
    other = client_as(UserFactory(username="other", role=Role.REVIEWER))
    response = other.post(f"/review/decisions/{record.pk}/undo/", **HTMX)
    assert response.status_code == 400 and "Only the reviewer" in response.content.decode()
    assert other.post("/review/decisions/99999/undo/").status_code == 404


def test_return_from_the_bar_opens_the_next_trace_at_once(client_as, reviewer_user, trace):
    following = TraceFactory()
    response = post(client_as(reviewer_user), trace, {"decision": "return", "comment": "Why?"},
                    **HTMX)  # fmt: skip
    assert response["HX-Redirect"] == f"/review/{following.pk}/"


def test_the_edit_box_keeps_a_leading_newline(client_as, reviewer_user):
    trace = TraceFactory(solution="\nSo $\\boxed{4}$.")
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert 'id="edit-solution">\n\nSo' in body
