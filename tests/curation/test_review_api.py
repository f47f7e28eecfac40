import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.models import ReviewDecision
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db


def test_queue_lists_oldest_first_with_filters_and_counts(api_as, reviewer_user):
    first = TraceFactory(flag_too_short=True)
    second = TraceFactory()
    api = api_as(reviewer_user)
    data = api.get("/api/review-queue/").json()
    assert data["count"] == 2 and [r["id"] for r in data["results"]] == [first.pk, second.pk]
    assert api.get("/api/review-queue/", {"checks": "too_short"}).json()["count"] == 1
    assert api.get("/api/review-queue/", {"checks": "bogus"}).status_code == 400
    assert api.get("/api/review-queue/", {"since": "2000-01-01"}).json()["count"] == 2
    assert api.get("/api/review-queue/", {"until": "2000-01-01"}).json()["count"] == 0


def test_the_queue_count_is_kept_briefly_and_pages_make_no_query_per_row(api_as, reviewer_user):
    def get(**params) -> tuple[dict, list[str]]:
        with CaptureQueriesContext(connection) as queries:
            data = api.get("/api/review-queue/", params).json()
        return data, [q["sql"] for q in queries.captured_queries]

    TraceFactory()
    api = api_as(reviewer_user)
    first, first_queries = get()
    TraceFactory.create_batch(3)
    kept, kept_queries = get()
    assert first["count"] == kept["count"] == 1 and len(kept["results"]) == 4
    assert not any("COUNT(" in sql for sql in kept_queries)
    cache.clear()
    counted, counted_queries = get()
    assert counted["count"] == 4 and len(counted_queries) <= len(first_queries)
    assert api.get("/api/review-queue/", {"q": "wait", "page": 2}).status_code == 404


def test_annotators_cannot_reach_the_queue_or_review(api_as, annotator_user):
    trace = TraceFactory()
    api = api_as(annotator_user)
    assert api.get("/api/review-queue/").status_code == 403
    assert api.post(f"/api/traces/{trace.pk}/review/", {"decision": "approve"}).status_code == 403


def test_review_decisions_through_the_api(api_as, reviewer_user):
    trace = TraceFactory()
    api = api_as(reviewer_user)
    url = f"/api/traces/{trace.pk}/review/"
    refused = api.post(url, {"decision": "reject"}, format="json")
    assert refused.status_code == 400 and "reason" in refused.json()["detail"]
    bad = api.post(url, {"decision": "maybe"}, format="json")
    assert bad.status_code == 400 and "decision" in bad.json()
    made = api.post(url, {"decision": "approve", "edited_solution": "x = \\boxed{4}."},
                    format="json")  # fmt: skip
    assert made.status_code == 201 and made.json()["edited"] is True
    assert ReviewDecision.objects.get().solution_after == "x = \\boxed{4}."
    assert api.post("/api/traces/999999/review/", {"decision": "approve"}).status_code == 404


def test_self_review_is_forbidden(api_as):
    trace = TraceFactory()
    author = trace.annotation.annotator
    from django.contrib.auth.models import Group

    author.groups.add(Group.objects.get(name="reviewer"))
    response = api_as(author).post(f"/api/traces/{trace.pk}/review/", {"decision": "approve"})
    assert response.status_code == 403


def test_refusing_an_own_annotation_is_a_typed_403_and_other_refusals_are_400(api_as):
    from curation import services

    trace = TraceFactory()
    author = trace.annotation.annotator
    from django.contrib.auth.models import Group

    author.groups.add(Group.objects.get(name="reviewer"))
    with pytest.raises(services.OwnAnnotation):
        services.review_decide(trace_id=trace.pk, reviewer=author, decision="approve")
    own = api_as(author).post(f"/api/traces/{trace.pk}/review/", {"decision": "approve"})
    assert own.status_code == 403 and "your own annotation" in own.json()["detail"]
    reviewer = TraceFactory().annotation.annotator  # someone else's trace to them
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    unreasoned = api_as(reviewer).post(f"/api/traces/{trace.pk}/review/", {"decision": "reject"})
    assert unreasoned.status_code == 400 and "reason code" in unreasoned.json()["detail"]
