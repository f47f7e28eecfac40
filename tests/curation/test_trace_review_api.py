"""A trace's review through the API: its state, the review filter and the decision history."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation import services
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


def decide(trace, reviewer, decision, **extra):
    services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision=decision, **extra)


def test_a_trace_shows_its_review_state_in_the_detail_and_the_list(api_as, reviewer_user):
    trace = TraceFactory()
    failed = TraceFactory(status="failed")
    api = api_as(reviewer_user)
    assert api.get(f"/api/traces/{trace.pk}/").json()["review"] == {
        "status": "pending", "approvals": 0, "rank": None, "edited": False,
    }  # fmt: skip
    decide(trace, reviewer_user, "approve", edited_solution="x = \\boxed{4}, checked.")
    services.review_pick_best(trace_id=trace.pk, reviewer=reviewer_user)
    assert api.get(f"/api/traces/{trace.pk}/").json()["review"] == {
        "status": "approved", "approvals": 1, "rank": 1, "edited": True,
    }  # fmt: skip
    listed = {t["id"]: t["review"] for t in api.get("/api/traces/").json()["results"]}
    assert listed[trace.pk]["status"] == "approved" and listed[trace.pk]["edited"] is True
    assert listed[failed.pk] is None  # a job that did not succeed has no review


def test_the_trace_list_filters_by_review(api_as, reviewer_user, admin_user):
    approved, rejected, returned, untouched = TraceFactory.create_batch(4)
    TraceFactory(status="failed")
    decide(approved, reviewer_user, "approve")
    decide(rejected, reviewer_user, "reject", reason="lost_step")
    decide(returned, reviewer_user, "return", comment="Step 2 is missing.")
    api = api_as(admin_user)

    def listed(review):
        response = api.get("/api/traces/", {"review": review})
        return {t["id"] for t in response.json()["results"]}

    assert listed("approved") == {approved.pk}
    assert listed("rejected") == {rejected.pk}
    assert listed("returned") == {returned.pk}
    assert listed("pending") == {untouched.pk}  # succeeded and not decided yet
    assert listed("reexpanded") == set()
    response = api.get("/api/traces/", {"review": "maybe"})
    assert response.status_code == 400 and "review" in response.json()


def test_the_list_reads_reviews_without_a_query_per_trace(api_as, reviewer_user):
    api = api_as(reviewer_user)
    api.get("/api/traces/")  # the reviewer's roles are read once, then kept
    counts = []
    for batch in (1, 5):
        for trace in TraceFactory.create_batch(batch):
            decide(trace, reviewer_user, "approve")
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/traces/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_the_decision_history_is_listed_oldest_first_and_read_only(
    api_as, reviewer_user, annotator_user, settings
):
    settings.REVIEW_APPROVALS_REQUIRED = 2  # the first approval leaves the trace open
    trace = TraceFactory()
    second = UserFactory(username="second", role="reviewer")
    decide(trace, reviewer_user, "approve", edited_thought="Hmm. Wait: 3+3=6. So x=4.")
    decide(trace, second, "reject", reason="style", comment="Too terse.")
    api = api_as(reviewer_user)
    history = api.get(f"/api/traces/{trace.pk}/decisions/").json()
    assert [(d["decision"], d["reviewer_username"], d["edited"]) for d in history] == [
        ("approve", "rev", True), ("reject", "second", False),
    ]  # fmt: skip
    assert history[1]["reason"] == "style" and history[1]["comment"] == "Too terse."
    assert api.post(f"/api/traces/{trace.pk}/decisions/").status_code == 405
    assert api.get("/api/traces/999999/decisions/").status_code == 404
    assert api.get("/api/traces/null,null/decisions/").status_code == 404
    assert api_as(annotator_user).get(f"/api/traces/{trace.pk}/decisions/").status_code == 403


def test_the_schema_describes_the_review_and_the_decisions(api_as, admin_user):
    schema = api_as(admin_user).get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    for name in ("ReviewedTraceList", "ReviewedTrace"):
        assert components[name]["properties"]["review"]["nullable"] is True
    assert set(components["ReviewState"]["properties"]) == {"status", "approvals", "rank",
                                                            "edited"}  # fmt: skip
    review = next(p for p in schema["paths"]["/api/traces/"]["get"]["parameters"]
                  if p["name"] == "review")  # fmt: skip
    assert {"approved", "rejected", "pending", "returned", "reexpanded"} <= set(
        review["schema"]["enum"]
    )
    decisions = schema["paths"]["/api/traces/{id}/decisions/"]
    assert set(decisions) == {"get"}
    assert decisions["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/DecisionRecord"},
    }  # fmt: skip
