"""A reviewer's session in headless Chromium: filter, open, decide by key, edit, reject."""

import pytest

from curation.models import ReviewDecision, TraceReview
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_reviewer_filters_opens_and_decides(page, log_in, reviewer_user):
    flagged = TraceFactory(flag_answer_mismatch=True, thought="Hmm.\n\nWait, recheck.")
    plain = TraceFactory(thought="Straight.\n\nDone.")
    third = TraceFactory(thought="Alternatively, try 4.")
    log_in("rev")
    page.goto("/review/")
    page.check("input[name=checks][value=answer_mismatch]")
    page.click("form.filters button[type=submit]")
    assert page.locator("table.queue tbody tr").count() == 1
    page.click(f"text=#{flagged.pk}")
    page.wait_for_url(f"**/review/{flagged.pk}/")
    assert page.locator(".trace-text mark").first.inner_text() in ("Hmm", "Wait")

    page.keyboard.press("a")  # approve, then the next trace opens
    page.wait_for_url(f"**/review/{plain.pk}/")
    assert TraceReview.objects.get(trace=flagged).status == "approved"

    page.keyboard.press("r")
    page.select_option("#reject-reason", "lost_step")
    page.fill("#reject-panel input[name=comment]", "Step 2 is missing.")
    page.click("#reject")
    page.wait_for_url(f"**/review/{third.pk}/")
    assert ReviewDecision.objects.get(trace=plain).reason == "lost_step"

    page.keyboard.press("e")
    page.fill("#edit-thought", "Alternatively, try 4. It works.")
    page.click("#edit-approve")
    page.wait_for_url("**/review/")
    review = TraceReview.objects.get(trace=third)
    assert review.status == "approved" and review.edited_thought.endswith("It works.")
    assert page.console_errors == []


def test_script_and_onerror_in_a_trace_stay_inert(page, log_in, reviewer_user):
    payload = (
        '<script>alert("s")</script><img src=x onerror="alert(1)"> $<img src=y onerror=alert(2)>$'
    )
    trace = TraceFactory(thought=f"Wait {payload}", solution=payload)
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    page.locator(".trace-text").first.wait_for()
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator(".trace-text img").count() == 0
