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


@pytest.fixture
def short_undo(monkeypatch):
    """Two seconds to undo instead of five, so that waiting out the window is quick."""
    from curation import services

    monkeypatch.setattr(services, "UNDO_SECONDS", 2)
    return 2


def test_an_approval_by_key_can_be_undone(page, log_in, reviewer_user, short_undo):
    trace, following = TraceFactory(thought="Hmm.\n\nDone."), TraceFactory()
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    page.keyboard.press("a")
    notice = page.locator(".undo-notice")
    notice.wait_for()
    assert f"Trace #{trace.pk}: approved" in notice.inner_text()
    page.click("#undo")
    page.locator("text=your approve was undone").wait_for()
    page.wait_for_timeout(short_undo * 1000 + 500)  # the window has passed: no next trace
    assert page.url.endswith(f"/review/{trace.pk}/")
    assert page.locator(".review-head .tag").last.inner_text() == "Pending"
    assert "Undo of the approve" in page.locator(".history").inner_text()
    assert page.locator("#approve").is_visible()  # it can be decided again
    assert TraceReview.objects.get(trace=trace).status == "pending"
    assert list(ReviewDecision.objects.values_list("decision", flat=True)) == ["approve", "undo"]
    assert not TraceReview.objects.filter(trace=following, claimed_by__isnull=False).exists()
    assert page.console_errors == []


def test_an_approval_not_undone_stands_and_the_next_trace_opens(
    page, log_in, reviewer_user, short_undo
):
    trace, following = TraceFactory(), TraceFactory()
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    page.keyboard.press("a")
    page.locator("#undo").wait_for()
    page.wait_for_url(f"**/review/{following.pk}/")
    assert TraceReview.objects.get(trace=trace).status == "approved"
    assert list(ReviewDecision.objects.values_list("decision", flat=True)) == ["approve"]
    assert page.console_errors == []


def test_the_decision_bar_stays_in_view_over_a_long_trace(page, log_in, reviewer_user):
    paragraphs = [f"Step {n}: we look at case {n} and keep going." for n in range(1, 81)]
    trace = TraceFactory(thought="\n\n".join(paragraphs))
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")

    def approve_is_in_view_and_uncovered():
        box = page.locator("#approve").bounding_box()
        height = page.viewport_size["height"]
        assert box["y"] >= 0 and box["y"] + box["height"] <= height
        on_top = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('#approve') !== null",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert on_top

    page.locator("#p-40").scroll_into_view_if_needed()
    approve_is_in_view_and_uncovered()
    page.locator("#p-80").scroll_into_view_if_needed()
    approve_is_in_view_and_uncovered()
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    approve_is_in_view_and_uncovered()
    # Scrolled to the end, the bar sits below the trace and covers none of it.
    solution = page.locator(".trace .trace-text").last.bounding_box()
    bar = page.locator("#decisions").bounding_box()
    assert solution["y"] + solution["height"] <= bar["y"]


def test_a_refused_decision_is_said_in_the_bar_and_the_page_stays(
    page, log_in, reviewer_user, settings
):
    settings.DEBUG = True  # as `make demo` runs, with django-htmx's error overlay loaded
    trace = TraceFactory()
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    page.keyboard.press("x")
    page.select_option("#reexpand-panel select[name=endpoint]", str(trace.endpoint_id))
    trace.endpoint.is_active = False  # switched off by an admin while the page was open
    trace.endpoint.save()
    page.click("#reexpand")
    message = page.locator("#decision-messages [role=alert]")
    message.wait_for()
    assert "There is no active endpoint" in message.inner_text()
    assert page.locator("#approve").is_visible() and page.locator(".history").is_visible()
    assert page.url.endswith(f"/review/{trace.pk}/")
