"""A reviewer opens the analytics dashboard and follows drill-down links to the traces behind."""

import pytest
from django.utils import timezone

from curation.analytics.profiles import profile_trace
from curation.models import Marker
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewer_follows_a_marker_and_a_histogram_drill_down(page, log_in, reviewer_user):
    # A transactional test empties every table, the markers the migration made included.
    Marker.objects.get_or_create(phrase="Wait", defaults={"counted_at": timezone.now()})
    waiting = [TraceFactory(thought="Wait, recheck.\nSo 4.", completion_tokens=900) for _ in "ab"]
    plain = TraceFactory(thought="Straight to 4.", completion_tokens=2400)
    for trace in [*waiting, plain]:
        profile_trace(trace_id=trace.pk)
    log_in("rev")
    page.goto("/analytics/")
    funnel = page.locator("#funnel tr[data-stage=expanded] td").last
    assert funnel.inner_text() == "3"

    # "Wait" is absent from one trace: follow the marker table's "without" link.
    wait_row = page.locator("#profile table.markers").first.locator("tr", has_text="Wait")
    wait_row.locator("text=without").click()
    page.wait_for_url("**/analytics/traces/?*lacks=Wait*")
    assert page.locator("#trace-count").inner_text().startswith("1 trace")
    assert page.locator(f"a[href='/traces/{plain.pk}/']").count() == 1

    # Back to the dashboard, and the histogram bar holding the two short traces.
    page.go_back()
    page.locator("#profile figure.histogram").first.locator("svg a").first.click()
    page.wait_for_url("**/analytics/traces/?*tokens_min=*")
    assert page.locator("#trace-count").inner_text().startswith("2 traces")
    assert page.console_errors == []
