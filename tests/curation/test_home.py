"""The home page: the reviewer's way into the queue, and what became of an annotator's work."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.roles import Role
from curation.models import TraceReview
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


def _item(body: str, problem) -> str:
    """The home page's list item of the annotation of ``problem``."""
    found = re.search(
        rf'<li class="annotation-item">\s*<a href="[^"]+">{problem.source}:{problem.external_id}'
        r"</a>.*?</li>",
        body,
        re.S,
    )
    assert found, f"{problem.external_id} is not on the page"
    return re.sub(r"<[^>]+>", "", found.group(0))


def _submitted(annotator, **kwargs):
    return AnnotationFactory(annotator=annotator, status="submitted", **kwargs)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.ADMIN])
def test_the_reviewer_home_leads_to_the_review_queue_and_the_next_trace(client_as, role):
    body = client_as(UserFactory(username="r", role=role)).get("/").content.decode()
    main = body.split("<main>")[1]
    assert 'href="/review/"' in main and "Review queue" in main
    assert re.search(
        r'<form method="post" action="/review/next/">.*?Review the next trace', main, re.S
    )


def test_the_next_trace_button_opens_the_oldest_trace_awaiting_review(client_as, reviewer_user):
    oldest, _ = TraceFactory(), TraceFactory()
    response = client_as(reviewer_user).post("/review/next/")
    assert response.status_code == 302 and response.url == f"/review/{oldest.pk}/"


def test_an_annotator_home_has_no_review_link(client_as, annotator_user):
    main = client_as(annotator_user).get("/").content.decode().split("<main>")[1]
    assert "/review/" not in main


def test_an_annotator_sees_what_became_of_their_submitted_work(client_as, annotator_user):
    approved = _submitted(annotator_user)
    TraceReview.objects.create(trace=TraceFactory(annotation=approved), status="approved")
    TraceFactory(annotation=approved, status="running")
    TraceFactory(annotation=approved, status="failed")
    rejected = _submitted(annotator_user)
    TraceReview.objects.create(trace=TraceFactory(annotation=rejected), status="rejected")
    awaiting = _submitted(annotator_user)
    TraceFactory(annotation=awaiting)
    waiting = _submitted(annotator_user)

    body = client_as(annotator_user).get("/").content.decode()
    assert " ".join(_item(body, approved.problem).split()).startswith(
        f"{approved.problem.source}:{approved.problem.external_id} Submitted "
        "3 traces expanded · 1 running · 1 failed · 1 approved"
    )
    assert "1 trace expanded · 1 rejected" in _item(body, rejected.problem)
    assert "1 trace expanded · 1 awaiting review" in _item(body, awaiting.problem)
    assert "waiting for expansion" in _item(body, waiting.problem)


def test_a_returned_annotation_shows_the_comment_and_the_returned_trace(client_as, annotator_user):
    returned = AnnotationFactory(
        annotator=annotator_user, status="returned", return_comment="Step 2 skips the check."
    )
    TraceReview.objects.create(trace=TraceFactory(annotation=returned), status="returned")
    item = _item(client_as(annotator_user).get("/").content.decode(), returned.problem)
    assert "1 returned to you" in item and "Reviewer: Step 2 skips the check." in item


def test_an_annotator_never_sees_other_peoples_work(client_as, annotator_user):
    other = UserFactory(username="other", role=Role.ANNOTATOR)
    theirs = _submitted(other, problem=ProblemFactory(external_id="not-mine"))
    TraceReview.objects.create(trace=TraceFactory(annotation=theirs), status="approved")
    mine = _submitted(annotator_user)
    TraceFactory(annotation=mine, status="queued")

    body = client_as(annotator_user).get("/").content.decode()
    assert "not-mine" not in body and "approved" not in body
    assert "1 trace expanded · 1 running" in _item(body, mine.problem)


def test_the_home_page_queries_do_not_grow_with_the_work_listed(client_as, annotator_user):
    def queries() -> int:
        client = client_as(annotator_user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return len(captured)

    TraceFactory(annotation=_submitted(annotator_user))
    few = queries()
    for _ in range(5):
        annotation = _submitted(annotator_user)
        TraceReview.objects.create(trace=TraceFactory(annotation=annotation), status="approved")
        TraceFactory(annotation=annotation, status="failed")
    assert queries() == few
