"""Highlighted markers on the review page leave math for KaTeX to render."""

import pytest

from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)

# Text of the paragraph outside KaTeX's output: what a reader sees as raw source.
RAW_TEXT = """el => { const copy = el.cloneNode(true);
  copy.querySelectorAll('.katex').forEach(k => k.remove()); return copy.textContent; }"""


def test_a_marker_inside_math_does_not_break_katex(page, log_in, reviewer_user):
    trace = TraceFactory(thought=r"Is $\text{wait}$ right? Wait, then $x = \frac{1}{2}$.")
    log_in("rev")
    page.goto(f"/review/{trace.pk}/")
    paragraph = page.locator("#p-1")
    paragraph.locator(".katex").first.wait_for()
    assert paragraph.locator(".katex").count() == 2
    assert paragraph.locator(".katex-error").count() == 0
    assert paragraph.locator("mark").all_inner_texts() == ["Wait"]
    raw = paragraph.evaluate(RAW_TEXT)
    assert "$" not in raw and "\\text" not in raw and "right? Wait, then" in raw
    assert page.console_errors == []
