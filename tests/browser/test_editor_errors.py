"""What the server refuses in the editor is said in the page, and the page keeps working."""

import pytest

from annotator.models import Annotation
from tests.factories import ProblemFactory

from .test_annotation_editor import wait_saved, write_step

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_submit_keeps_the_editor_and_a_mismatch_can_be_confirmed(
    page, log_in, annotator_user
):
    ProblemFactory(statement="Solve $x + x = 8$.", reference_answer="4")
    log_in("ann")
    page.click("#next-problem")
    page.wait_for_url("**/annotations/*/")
    page.click(".add-step")
    wait_saved(page, 2)

    page.click("#submit-annotation")  # one empty step, no answer: refused with reasons
    page.locator("#submit-messages", has_text="Step 1 is empty").wait_for()
    assert page.locator("#editor textarea[name=text]").count() == 1
    assert page.locator("link[rel=stylesheet]").count() >= 1  # still the styled page

    write_step(page, 0, "attempt", "Guess $x=3$.")
    wait_saved(page, 3)
    page.reload()
    assert page.locator("#steps textarea[name=text]").first.input_value() == "Guess $x=3$."

    for index, (kind, text) in enumerate([("reflection", "But $3+3=6$."), ("correction", "x=5")]):
        page.click(".add-step")
        wait_saved(page, 4 + 2 * index)
        write_step(page, index + 1, kind, text)
        wait_saved(page, 5 + 2 * index)
    page.fill("input[name=final_answer]", "5")
    page.click("#submit-annotation")
    page.locator("#submit-messages", has_text="does not match the reference answer").wait_for()
    page.check("input[name=confirm_mismatch]")
    page.click("#submit-annotation")
    page.locator(".messages", has_text="Submitted. Thank you").wait_for()
    annotation = Annotation.objects.get()
    assert annotation.status == "submitted" and annotation.mismatch_confirmed
    assert [step["text"] for step in annotation.steps] == [
        "Guess $x=3$.",
        "But $3+3=6$.",
        "x=5",
    ]
