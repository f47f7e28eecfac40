"""An annotator's day in headless Chromium: take a problem, write, reload, conflict, submit."""

import pytest

from annotator.models import Annotation
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def wait_saved(page, version):
    page.locator("#save-status", has_text=f"Saved · version {version}").wait_for()


def write_step(page, index, kind, text, notes=""):
    step = page.locator("#steps > .step").nth(index)
    step.locator("select[name=kind]").select_option(kind)
    step.locator("textarea[name=text]").fill(text)
    if notes:
        step.locator("textarea[name=notes]").fill(notes)


def test_annotator_writes_reloads_resolves_a_conflict_and_submits(page, log_in, annotator_user):
    ProblemFactory(statement=r"Solve $x + x = \frac{8}{1}$.", reference_answer="4")
    log_in("ann")
    page.click("#next-problem")
    page.wait_for_url("**/annotations/*/")
    page.locator(".statement .katex").first.wait_for()
    annotation = Annotation.objects.get()

    page.click(".add-step")
    wait_saved(page, 2)
    write_step(page, 0, "attempt", "Guess $x=3$.", "Doubling means adding a number to itself.")
    wait_saved(page, 3)
    assert page.locator("#steps .preview .katex").count() >= 1  # live preview with KaTeX

    page.keyboard.press("Alt+Enter")  # new step below the current one
    wait_saved(page, 4)
    assert page.locator("#steps > .step").count() == 2
    page.keyboard.type("Wait: $3+3=6$, not 8.")
    page.keyboard.press("Alt+2")  # reflection
    wait_saved(page, 5)
    annotation.refresh_from_db()
    assert [s["kind"] for s in annotation.steps] == ["attempt", "reflection"]
    assert annotation.steps[0]["notes"] == ["Doubling means adding a number to itself."]

    # Typed but not yet acknowledged when the page goes away: the browser keeps it.
    page.route("**/save/", lambda route: route.abort())
    page.locator("#steps > .step").nth(1).locator("textarea[name=text]").fill(
        "Wait: $3+3=6$, not 8. Too small."
    )
    page.locator("#save-status", has_text="Not saved").wait_for()
    page.unroute("**/save/")
    page.reload()
    page.locator("#save-status", has_text="Saved · version 6").wait_for()
    assert (
        "Too small."
        in page.locator("#steps > .step").nth(1).locator("textarea").first.input_value()
    )

    # A second tab saves first; this tab is told, sees both, keeps its own.
    other = page.context.new_page()
    other.goto(page.url)
    write_step(other, 1, "reflection", "Edited in the other tab.")
    wait_saved(other, 7)
    other.close()
    write_step(page, 1, "reflection", "Wait: $3+3=6$, not 8. So x is bigger.")
    page.locator("#conflict", has_text="changed elsewhere").wait_for()
    assert "Edited in the other tab." in page.locator("#conflict").inner_text()
    page.click("#keep-mine")
    wait_saved(page, 8)

    page.click(".add-step")
    wait_saved(page, 9)
    write_step(page, 2, "correction", "Try $x=4$: $4+4=8$. Yes.")
    page.fill("input[name=final_answer]", "4")
    wait_saved(page, 10)
    page.click("#submit-annotation")
    page.locator(".messages", has_text="Submitted. Thank you").wait_for()
    assert "/annotations/" not in page.url  # back on the home page
    annotation.refresh_from_db()
    assert annotation.status == "submitted" and annotation.answer_check == "match"
    assert annotation.steps[1]["text"] == "Wait: $3+3=6$, not 8. So x is bigger."
    assert annotation.revisions.count() == annotation.version - 1
    # The aborted saves and the 409 are logged by the browser; no script failed or was blocked.
    assert not [e for e in page.console_errors if "Uncaught" in e or "Content Security" in e]


def test_script_typed_into_a_step_stays_inert(page, log_in, annotator_user):
    ProblemFactory()
    log_in("ann")
    page.click("#next-problem")
    page.click(".add-step")
    wait_saved(page, 2)
    payload = '<script>alert("s")</script><img src=x onerror="alert(1)">'
    write_step(page, 0, "attempt", payload, payload)
    wait_saved(page, 3)
    page.reload()
    page.locator("#steps .preview").first.wait_for()
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator("#steps .preview img").count() == 0
    assert page.locator("#steps textarea[name=text]").first.input_value() == payload
