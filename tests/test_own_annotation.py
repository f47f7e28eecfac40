"""A user with both the annotator and reviewer roles can neither review nor ask for more
expansions of their own annotation: one rule (annotator/roles.py), one typed refusal."""

import pytest
from django.contrib.auth.models import Group

from annotator.roles import OwnAnnotation
from curation import services as curation
from expansion import services as expansion
from expansion.models import Trace
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def author_trace():
    trace = TraceFactory()
    trace.annotation.annotator.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    return trace


def test_asking_for_more_expansions_of_ones_own_annotation_is_refused(api_as, author_trace):
    author, annotation = author_trace.annotation.annotator, author_trace.annotation
    response = api_as(author).post(f"/api/annotations/{annotation.pk}/expand/", {}, format="json")
    assert response.status_code == 403
    assert "your own annotation" in response.json()["detail"]
    with pytest.raises(OwnAnnotation):
        expansion.traces_request(annotation=annotation, requested_by=author, extra=True)
    assert Trace.objects.filter(annotation=annotation).count() == 1


def test_the_re_expand_decision_on_ones_own_trace_is_the_same_refusal(
    api_as, client_as, author_trace
):
    author = author_trace.annotation.annotator
    with pytest.raises(OwnAnnotation):
        curation.review_decide(trace_id=author_trace.pk, reviewer=author, decision="reexpand")
    api = api_as(author).post(f"/api/traces/{author_trace.pk}/review/", {"decision": "reexpand"})
    assert api.status_code == 403 and "your own annotation" in api.json()["detail"]
    page = client_as(author).post(f"/review/{author_trace.pk}/decide/", {"decision": "reexpand"})
    assert "your own annotation" in page.content.decode()
    assert Trace.objects.filter(annotation=author_trace.annotation).count() == 1


def test_another_reviewer_can_still_ask_for_more(api_as, reviewer_user, author_trace):
    annotation = author_trace.annotation
    response = api_as(reviewer_user).post(f"/api/annotations/{annotation.pk}/expand/", {},
                                          format="json")  # fmt: skip
    assert response.status_code == 202
