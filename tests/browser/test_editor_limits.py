"""A paste longer than a step may be: the browser cuts it, the editor says so."""

import pytest

from tests.factories import ProblemFactory

from .test_annotation_editor import wait_saved

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_paste_longer_than_a_step_may_be_says_what_was_cut(page, log_in, annotator_user):
    ProblemFactory()
    log_in("ann")
    page.click("#next-problem")
    page.wait_for_url("**/annotations/*/")
    page.click(".add-step")
    wait_saved(page, 2)
    text = page.locator("#steps textarea[name=text]").first
    text.fill("x" * 17_000)
    count = page.locator("#steps .char-count")
    assert count.count() == 0  # below 90% of the limit: no count

    text.fill("y" * 18_500)
    assert count.inner_text() == "18,500 / 20,000 characters"

    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    text.fill("")
    page.evaluate("navigator.clipboard.writeText('z'.repeat(25000))")
    text.focus()
    page.keyboard.press("Control+V")
    count.filter(has_text="left out").wait_for()
    assert len(text.input_value()) == 20_000
    assert "20,000 / 20,000 characters" in count.inner_text()
    assert "its last 5,000 characters were left out" in count.inner_text()
