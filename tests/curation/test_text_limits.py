"""Each free-text field a reviewer or admin sends has one limit, the same on page and API."""

import pytest

from curation.models import Export, ReviewDecision, TraceReview
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db

LIMITS = [
    ("comment", {"decision": "return"}, ReviewDecision.COMMENT_MAX_CHARS),
    ("edited_thought", {"decision": "approve"}, TraceReview.EDITED_THOUGHT_MAX_CHARS),
    ("edited_solution", {"decision": "approve"}, TraceReview.EDITED_SOLUTION_MAX_CHARS),
]


def test_the_limits_are_documented_sizes():
    assert ReviewDecision.COMMENT_MAX_CHARS == 10_000
    assert TraceReview.EDITED_THOUGHT_MAX_CHARS == 200_000
    assert TraceReview.EDITED_SOLUTION_MAX_CHARS == 50_000
    assert Export.SYSTEM_MAX_CHARS == 20_000


@pytest.mark.parametrize("field, data, limit", LIMITS)
def test_the_review_page_and_api_refuse_the_same_oversized_text(
    client_as, api_as, reviewer_user, field, data, limit
):
    trace = TraceFactory()
    too_long = {**data, "comment": "Please redo.", field: "x" * (limit + 1)}
    page = client_as(reviewer_user).post(f"/review/{trace.pk}/decide/", too_long)
    assert page.status_code == 400
    assert f"no more than {limit} characters" in page.content.decode()
    api = api_as(reviewer_user).post(f"/api/traces/{trace.pk}/review/", too_long, format="json")
    assert api.status_code == 400
    assert f"no more than {limit} characters" in str(api.json()[field])
    assert ReviewDecision.objects.count() == 0

    fits = {**too_long, field: "y" * limit}
    assert client_as(reviewer_user).post(f"/review/{trace.pk}/decide/", fits).status_code == 302
    assert ReviewDecision.objects.count() == 1


def test_the_export_page_and_api_refuse_an_oversized_system_prompt(client_as, api_as, admin_user):
    body = {"format": "messages", "system": "s" * (Export.SYSTEM_MAX_CHARS + 1)}
    page = client_as(admin_user).post("/exports/", body)
    assert f"no more than {Export.SYSTEM_MAX_CHARS} characters" in page.content.decode()
    api = api_as(admin_user).post("/api/exports/", body, format="json")
    assert api.status_code == 400 and "system" in api.json()
    long_split = {"format": "messages", "split": "train=1," + "a" * 300}
    assert api_as(admin_user).post("/api/exports/", long_split, format="json").status_code == 400
    for name in ("source", "subject", "endpoint", "model"):
        long_filter = {"format": "messages", name: "f" * (Export.FILTER_MAX_CHARS + 1)}
        refused = api_as(admin_user).post("/api/exports/", long_filter, format="json")
        assert refused.status_code == 400 and name in refused.json()
    assert Export.objects.count() == 0
