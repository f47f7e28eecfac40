"""The review queue's filter form: labels, select lists, refusals in words, levels."""

from html.parser import HTMLParser

import pytest

from expansion.models import LLMEndpoint
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


class FilterFields(HTMLParser):
    """The fields of the page's filter form, each with the text of the label around it."""

    def __init__(self):
        super().__init__()
        self.fields, self.labels, self.in_form, self.done = {}, [], False, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and "filters" in (attrs.get("class") or "") and not self.done:
            self.in_form = True
        elif self.in_form and tag == "label":
            self.labels.append("")
        elif self.in_form and tag in ("input", "select") and attrs.get("type") != "checkbox":
            self.fields[attrs["name"]] = self.labels[-1].strip() if self.labels else ""

    def handle_endtag(self, tag):
        if tag == "form" and self.in_form:
            self.in_form, self.done = False, True
        elif self.in_form and tag == "label" and self.labels:
            self.labels.pop()

    def handle_data(self, data):
        if self.labels:
            self.labels[-1] += data


def test_every_queue_filter_has_a_label_and_the_checks_read_as_words(client_as, reviewer_user):
    TraceFactory(flag_answer_mismatch=True)
    body = client_as(reviewer_user).get("/review/").content.decode()
    for label in ("Answer mismatch", "Low coverage", "Too short", "Leakage", "Truncated"):
        assert f"{label} <span" in body
    assert "Answermismatch" not in body and "Lowcoverage" not in body
    parser = FilterFields()
    parser.feed(body)
    assert parser.fields == {
        "subject": "Subject", "level": "Level", "endpoint": "Endpoint",
        "prompt": "Prompt version", "annotator": "Annotator", "created_since": "Created since",
        "created_until": "Created until", "q": "Text in the thought",
    }  # fmt: skip


def test_endpoint_prompt_and_annotator_are_chosen_from_lists(client_as, reviewer_user):
    trace = TraceFactory(annotation=AnnotationFactory(annotator=UserFactory(username="carol"),
                                                      status="submitted"))  # fmt: skip
    other = LLMEndpoint.objects.create(name="other", base_url="https://o.example/v1", model="m")
    body = client_as(reviewer_user).get("/review/", {"endpoint": other.pk}).content.decode()
    assert '<select name="endpoint"' in body and '<select name="annotator"' in body
    assert f'<option value="{other.pk}" selected>other</option>' in body
    assert f'<option value="{trace.endpoint_id}">test-endpoint</option>' in body
    assert f'<option value="{trace.prompt_id}">{trace.prompt}</option>' in body
    assert f'<option value="{trace.annotation.annotator_id}">carol</option>' in body
    assert "Nothing awaits review" in body  # no trace of "other"


def test_a_refused_filter_is_named_in_words_and_the_others_still_apply(client_as, reviewer_user):
    TraceFactory(annotation=AnnotationFactory(problem=ProblemFactory(subject="Geometry"),
                                              status="submitted"))  # fmt: skip
    TraceFactory()
    body = (
        client_as(reviewer_user)
        .get("/review/", {"annotator": "bob", "subject": "Geometry", "created_since": "soon"})
        .content.decode()
    )
    assert "Annotator: choose one from the list (an id, in the API)." in body
    assert "Created since: enter a valid date." in body
    assert "ErrorDetail" not in body and "{&#x27;" not in body
    assert "1 match the filters" in body  # the subject still applies


@pytest.mark.parametrize("level", ["5", "Level 5", "level 5"])
def test_the_queue_takes_a_level_as_shown_on_the_problem_list(
    client_as, api_as, reviewer_user, level
):
    five = TraceFactory(annotation=AnnotationFactory(problem=ProblemFactory(level=5),
                                                     status="submitted"))  # fmt: skip
    TraceFactory()  # level 2
    body = client_as(reviewer_user).get("/review/", {"level": level}).content.decode()
    assert "1 match the filters" in body and f"/review/{five.pk}/" in body
    data = api_as(reviewer_user).get("/api/review-queue/", {"level": level}).json()
    assert [t["id"] for t in data["results"]] == [five.pk]


def test_review_next_takes_the_same_filters(client_as, reviewer_user):
    TraceFactory()
    five = TraceFactory(annotation=AnnotationFactory(problem=ProblemFactory(level=5),
                                                     status="submitted"))  # fmt: skip
    response = client_as(reviewer_user).post("/review/next/", {"level": "Level 5"})
    assert response.url == f"/review/{five.pk}/"
