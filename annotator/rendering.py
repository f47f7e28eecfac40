"""Markdown with LaTeX, rendered to HTML that is safe to show: the one place for it.

Math spans are lifted out before Markdown runs (so ``a_1 * b_2`` is not turned into
emphasis) and put back HTML-escaped for KaTeX to render in the browser; the HTML Markdown
produces is then cleaned with an allow-list, so no script or event handler survives.
"""

import html
import re

import markdown
import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "del", "sup", "sub", "span", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "th": {"align"}, "td": {"align"}}
MATH = re.compile(
    r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|(?<![\\$])\$(?!\s)[^$\n]+?(?<![\s\\])\$)", re.DOTALL
)
PLACEHOLDER = "\x00MATH{}\x00"


def render_markdown(text: str) -> str:
    """Untrusted Markdown + LaTeX -> sanitized HTML."""
    spans: list[str] = []

    def lift(match: re.Match) -> str:
        spans.append(match.group(0))
        return PLACEHOLDER.format(len(spans) - 1)

    body = MATH.sub(lift, text or "")
    rendered = markdown.markdown(body, extensions=["fenced_code", "tables", "sane_lists"])
    for index, span in enumerate(spans):
        rendered = rendered.replace(PLACEHOLDER.format(index), html.escape(span, quote=False))
    return nh3.clean(
        rendered,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
