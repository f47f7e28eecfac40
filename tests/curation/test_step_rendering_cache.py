"""A long trace's steps are rendered once: the review page takes their sanitized HTML from
the cache, keyed by the text and its language's markers."""

import pytest
from django.core.cache import cache

from curation import presentation


@pytest.fixture(autouse=True)
def fresh_cache(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache.clear()
    yield
    cache.clear()


def test_steps_are_rendered_once_and_again_only_when_their_text_changes(monkeypatch):
    calls = []
    real = presentation.render_markdown
    monkeypatch.setattr(presentation, "render_markdown",
                        lambda text: calls.append(text) or real(text))  # fmt: skip
    steps = ["Wait, $x = 2$.", "<script>alert(1)</script> So **4**."]
    first = presentation.render_paragraphs(steps)
    assert "<mark>Wait</mark>" in first[0] and "<script>" not in first[1]
    assert "<strong>4</strong>" in first[1]
    assert presentation.render_paragraphs(steps) == first and len(calls) == 2
    changed = presentation.render_paragraphs([steps[0], "Hmm, 5."])
    assert changed[0] == first[0] and "<mark>Hmm</mark>" in changed[1] and len(calls) == 3


def test_the_markers_of_the_language_are_part_of_the_key():
    english = presentation.render_paragraphs(["等等, 不对."], "en")
    chinese = presentation.render_paragraphs(["等等, 不对."], "zh")
    assert "<mark>" not in english[0] and "<mark>等等</mark>" in chinese[0]
