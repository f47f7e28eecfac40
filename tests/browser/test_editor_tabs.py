"""Two tabs on one annotation: each keeps its own unsaved copy; a conflict shows what differs."""

import pytest

from annotator.models import Annotation
from tests.factories import ProblemFactory

from .test_annotation_editor import wait_saved, write_step

pytestmark = pytest.mark.django_db(transaction=True)


def two_tabs_in_conflict(page, log_in):
    """A second tab saves version 4; this tab's change, based on version 3, conflicts.
    Returns the second tab."""
    ProblemFactory()
    log_in("ann")
    page.click("#next-problem")
    page.wait_for_url("**/annotations/*/")
    page.click(".add-step")
    wait_saved(page, 2)
    write_step(page, 0, "attempt", "Try $x=3$ first.")
    wait_saved(page, 3)

    other = page.context.new_page()
    other.goto(page.url)
    write_step(other, 0, "attempt", "Try $x=4$ first, it doubles to 8.")
    wait_saved(other, 4)

    write_step(page, 0, "attempt", "Try $x=3$ first, then check.")  # based on version 3
    page.locator("#conflict", has_text="changed elsewhere").wait_for()
    return other


def test_each_tab_keeps_its_own_copy_and_the_conflict_marks_what_differs(
    page, log_in, annotator_user
):
    other = two_tabs_in_conflict(page, log_in)
    mine = page.locator("#conflict .conflict-mine")
    saved = page.locator("#conflict .conflict-saved")
    assert "check." in mine.locator("ins").all_inner_texts()[-1]
    assert any("doubles" in text for text in saved.locator("del").all_inner_texts())
    assert mine.locator("ins .katex").count() == 1  # $x=3$ differs, and is rendered
    assert saved.locator(".katex").count() == 1

    # The tab whose save won reloads to its own saved text: no conflict, nothing restored.
    other.reload()
    other.locator("#save-status", has_text="Saved · version 4").wait_for()
    other.wait_for_timeout(500)
    assert other.locator("#conflict").inner_text() == ""
    assert other.locator("#steps textarea[name=text]").first.input_value() == (
        "Try $x=4$ first, it doubles to 8."
    )
    # The stale tab still has its unsaved text after a reload, and is asked again.
    page.reload()
    page.locator("#conflict", has_text="changed elsewhere").wait_for()
    assert "then check." in page.locator("#conflict .conflict-mine").inner_text()
    assert Annotation.objects.get().steps[0]["text"] == "Try $x=4$ first, it doubles to 8."

    # Once the stale tab is closed, its unsaved text is offered to the next tab, not lost.
    page.close()
    other.reload()
    other.locator("#conflict", has_text="changed elsewhere").wait_for()
    assert "then check." in other.locator("#conflict .conflict-mine").inner_text()


def test_keep_mine_after_a_reload_saves_the_copy_the_conflict_showed(page, log_in, annotator_user):
    two_tabs_in_conflict(page, log_in).close()

    # After a reload the form shows the saved version and the conflict shows this tab's copy:
    # keeping it saves that copy, not what the form on screen holds.
    page.reload()
    page.locator("#conflict", has_text="changed elsewhere").wait_for()
    page.click("#keep-mine")
    wait_saved(page, 5)
    assert Annotation.objects.get().steps[0]["text"] == "Try $x=3$ first, then check."
    assert page.locator("#steps textarea[name=text]").first.input_value() == (
        "Try $x=3$ first, then check."
    )
