import pytest

from curation.models import ReviewDecision, TraceReview
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


def test_queue_page_filters_and_counts(client_as, reviewer_user, django_assert_max_num_queries):
    TraceFactory(flag_leakage=True)
    TraceFactory.create_batch(3)
    client = client_as(reviewer_user)
    with django_assert_max_num_queries(12):
        body = client.get("/review/", {"checks": "leakage"}).content.decode()
    assert "4 awaiting review · 1 match the filters" in body


def test_queue_page_queries_do_not_grow_with_its_rows(client_as, reviewer_user):
    from django.core.cache import cache
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_as(reviewer_user)
    queries = []
    for batch in (1, 6):
        TraceFactory.create_batch(batch, thought="Wait.")
        cache.clear()
        with CaptureQueriesContext(connection) as captured:
            body = client.get("/review/", {"q": "wait"}).content.decode()
        queries.append(len(captured))
    assert queries[0] == queries[1] and "7 awaiting review · 7 match" in body
    assert "counted at" in body


def test_annotators_cannot_open_review_pages(client_as, annotator_user):
    trace = TraceFactory()
    client = client_as(annotator_user)
    assert client.get("/review/").status_code == 403
    assert client.get(f"/review/{trace.pk}/").status_code == 403
    assert client.post(f"/review/{trace.pk}/decide/", {"decision": "approve"}).status_code == 403


def test_review_page_shows_record_and_trace_side_by_side_and_claims(client_as, reviewer_user):
    trace = TraceFactory(thought="Hmm, start.\n\nWait, 3+3=6.\n\nSo x=4.")
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert "<mark>Hmm</mark>" in body and "<mark>Wait</mark>" in body
    assert 'id="p-3"' in body and "Reference answer" in body
    assert TraceReview.objects.get(trace=trace).claimed_by == reviewer_user


def test_untrusted_text_in_a_trace_renders_inert(client_as, reviewer_user):
    trace = TraceFactory(thought=f"Wait {XSS}", solution=XSS)
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert "<script>alert(1)" not in body and "<img" not in body  # escaped in the edit box


def test_deciding_moves_on_to_the_next_trace(client_as, reviewer_user):
    first, second = TraceFactory(), TraceFactory()
    client = client_as(reviewer_user)
    response = client.post(f"/review/{first.pk}/decide/", {"decision": "approve"})
    assert response["Location"] == f"/review/{second.pk}/"
    response = client.post(f"/review/{second.pk}/decide/", {"decision": "reject"})
    assert response.status_code == 400  # a reason is required: the page says so
    assert "Rejecting needs a reason code." in response.content.decode()
    client.post(f"/review/{second.pk}/decide/", {"decision": "reject", "reason": "style"})
    assert ReviewDecision.objects.count() == 2


def test_an_edit_shows_a_diff_in_the_history(client_as, reviewer_user):
    trace = TraceFactory(thought="Line one.\nLine two.")
    client = client_as(reviewer_user)
    client.post(f"/review/{trace.pk}/decide/", {
        "decision": "approve", "edited_thought": "Line one.\nLine 2 <b>fixed</b>.",
        "edited_solution": trace.solution,
    })  # fmt: skip
    body = client.get(f"/review/{trace.pk}/").content.decode()
    assert "What the edit changed" in body and "&lt;b&gt;fixed&lt;/b&gt;" in body
