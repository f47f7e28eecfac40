import pytest

from annotator.rendering import render_markdown

PAYLOADS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[click](javascript:alert(1))",
    '<a href="#" onclick="alert(1)">x</a>',
    "<iframe src=//evil></iframe>",
    "<svg onload=alert(1)>",
    "$<script>alert(1)</script>$",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_untrusted_text_cannot_carry_script(payload):
    html = render_markdown(payload).lower()
    assert "<script" not in html
    assert "onerror" not in html and "onclick" not in html and "onload" not in html
    assert "javascript:" not in html
    assert "<iframe" not in html and "<svg" not in html


def test_math_survives_markdown_untouched():
    html = render_markdown(r"Let $a_1 * b_2 < c$ and $$\sum_{i=1}^n i$$ hold; **so** it does.")
    assert r"$a_1 * b_2 &lt; c$" in html
    assert r"$$\sum_{i=1}^n i$$" in html
    assert "<strong>so</strong>" in html
    assert "<em>" not in html


def test_dollar_amounts_are_not_math():
    assert render_markdown("It costs $5 and $6.") == "<p>It costs $5 and $6.</p>"
