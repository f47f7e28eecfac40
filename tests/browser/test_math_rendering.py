"""Math renders wherever text arrives (live swaps included), and a broken formula is pointed out."""

import pytest

from annotator.models import Annotation
from expansion.models import Trace
from tests.factories import ProblemFactory, TraceFactory

from .test_annotation_editor import wait_saved, write_step

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_trace_that_finishes_while_its_page_is_open_shows_rendered_math(
    page, log_in, reviewer_user
):
    trace = TraceFactory(status="running", thought="", solution="", content="Let me see", checks={})
    log_in("rev")
    page.goto(f"/traces/{trace.pk}/")
    page.locator("#trace-progress .status", has_text="running").wait_for()

    Trace.objects.filter(pk=trace.pk).update(
        status="succeeded",
        thought="Wait: $3+3=6$, not $8$. So try $x=4$.",
        solution="Since $4+4=8$,\n\n\\boxed{4}",
        checks={"boxed_answer": "4", "coverage_mean": 1.0},
    )
    page.locator("#trace-progress .status", has_text="succeeded").wait_for()
    thought, solution = page.locator(".trace-text").nth(0), page.locator(".trace-text").nth(1)
    thought.locator(".katex").first.wait_for()
    assert thought.locator(".katex").count() == 3
    assert "$" not in thought.inner_text()
    assert solution.locator(".katex .fbox").count() == 1  # a bare \boxed{} outside $...$
    assert "\\boxed" not in solution.inner_text()


def test_an_unbalanced_formula_is_marked_and_submit_warns_before_sending(
    page, log_in, annotator_user
):
    ProblemFactory(statement="Solve $x + x = 8$.", reference_answer="4")
    log_in("ann")
    page.click("#next-problem")
    page.wait_for_url("**/annotations/*/")
    steps = [
        ("attempt", r"Half of it is $\frac{1}{2$ and $x=3$ is a guess."),
        ("reflection", "But $3+3=6$."),
        ("correction", "So $x=4$."),
    ]
    for index, (kind, text) in enumerate(steps):
        page.click(".add-step")
        wait_saved(page, 2 + 2 * index)
        write_step(page, index, kind, text)
        wait_saved(page, 3 + 2 * index)
    preview = page.locator("#steps .preview").first
    preview.locator(".math-broken", has_text=r"$\frac{1}{2$").wait_for()
    assert preview.locator(".katex").count() == 1  # $x=3$ beside it still renders

    page.fill("input[name=final_answer]", "4")
    wait_saved(page, 8)
    page.click("#submit-annotation")
    warning = page.locator("#submit-messages", has_text="Step 1")
    warning.wait_for()
    assert r"$\frac{1}{2$" in warning.inner_text()
    assert Annotation.objects.get().status == "draft"

    page.click("#submit-annotation")  # a warning, not a refusal
    page.locator(".messages", has_text="Submitted. Thank you").wait_for()
    assert Annotation.objects.get().status == "submitted"
