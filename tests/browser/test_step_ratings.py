"""A reviewer rates a trace's steps with the keyboard; after a reload every rating is there."""

import pytest

from curation.models import StepRating
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)

THOUGHT = "Try x = 3.\n\n3 + 3 = 6, not 8.\n\nWait, so x = 4.\n\nCheck: 4 + 4 = 8."


def _wait_saved(page, number, version):
    status = page.locator(f"#rating-{number} .rating-status")
    status.filter(has_text=f"Saved (version {version})").wait_for()


def _checked(page, number, name):
    return page.locator(f"#rating-{number} input[name={name}]:checked").get_attribute("value")


def test_rating_steps_by_key_survives_a_reload(page, log_in, reviewer_user):
    trace = TraceFactory(thought=THOUGHT)
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    page.click("#rating-mode")
    page.wait_for_url(f"**/review/{trace.pk}/?mode=steps")
    assert page.locator(".rated-step").count() == 4
    assert "current" in page.locator("#s-1").get_attribute("class")

    page.keyboard.press("3")  # step 1: +1
    page.keyboard.press("f")
    _wait_saved(page, 1, 2)
    page.keyboard.press("j")
    assert "current" in page.locator("#s-2").get_attribute("class")
    page.keyboard.press("1")  # step 2: -1, the record's own slip
    page.keyboard.press("f")
    page.keyboard.press("n")
    page.keyboard.type("The record makes this slip too.")
    _wait_saved(page, 2, 3)
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("2")  # step 3: 0, fixed early
    page.keyboard.press("e")
    _wait_saved(page, 3, 2)
    page.keyboard.press("j")
    page.keyboard.press("k")
    page.keyboard.press("j")
    page.keyboard.press("3")  # step 4: +1, invented
    page.keyboard.press("i")
    _wait_saved(page, 4, 2)

    page.reload()
    expected = {1: ("1", "faithful"), 2: ("-1", "faithful"), 3: ("0", "early_fix"),
                4: ("1", "invented")}  # fmt: skip
    for number, (correctness, faithfulness) in expected.items():
        assert _checked(page, number, "correctness") == correctness
        assert _checked(page, number, "faithfulness") == faithfulness
    note = page.locator("#rating-2 textarea[name=note]").input_value()
    assert note == "The record makes this slip too."
    stored = {r.step.number: (r.correctness, r.faithfulness) for r in
              StepRating.objects.select_related("step")}  # fmt: skip
    assert stored == {1: (1, "faithful"), 2: (-1, "faithful"), 3: (0, "early_fix"),
                      4: (1, "invented")}  # fmt: skip
    assert page.console_errors == []


def test_stop_at_the_first_wrong_step_sets_the_rest_aside(page, log_in, reviewer_user):
    trace = TraceFactory(thought=THOUGHT)
    log_in("rev")
    page.goto(f"/review/{trace.pk}/?mode=steps")
    page.check("#stop-first-wrong")
    page.keyboard.press("j")
    page.keyboard.press("1")  # step 2 is wrong: the steps after it are not rated
    _wait_saved(page, 2, 1)
    assert page.locator("#s-3 .after-wrong-note").is_visible()
    assert not page.locator("#rating-4").is_visible()
    page.keyboard.press("j")  # the cursor stays on the first wrong step
    assert "current" in page.locator("#s-2").get_attribute("class")
    page.reload()  # the choice is kept in this browser, and the wrong step on the server
    assert page.locator("#stop-first-wrong").is_checked()
    assert page.locator("#s-4 .after-wrong-note").is_visible()
    assert page.console_errors == []
