"""The review page's thought: marks outside math, and the step links the checks stored."""

import pytest

from curation import presentation
from tests.factories import AnnotationFactory, TraceFactory

pytestmark = pytest.mark.django_db

STEPS = [
    {"kind": "attempt", "text": "Factor the quadratic polynomial", "notes": []},
    {"kind": "conclusion", "text": "Zebra giraffe", "notes": []},
]
THOUGHT = "Hmm.\n\nFactor the quadratic polynomial.\n\nSo x = 4."


def _trace(**checks):
    coverage = [{"step": 1, "kind": "attempt", "score": 1.0},
                {"step": 2, "kind": "conclusion", "score": 0.0}]  # fmt: skip
    annotation = AnnotationFactory(status="submitted", steps=STEPS)
    return TraceFactory(
        annotation=annotation, thought=THOUGHT, checks={"coverage": coverage, **checks}
    )


def test_a_marker_inside_math_is_left_alone(client_as, reviewer_user):
    trace = TraceFactory(thought=r"Is $\text{wait}$ right? Wait, check $x<y$.")
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    paragraph = body.split('id="p-1"', 1)[1].split("</div>", 1)[0]
    assert paragraph.count("<mark>") == 1 and "<mark>Wait</mark>, check" in paragraph
    assert r"$\text{wait}$" in paragraph and "$x&lt;y$" in paragraph


def test_the_page_shows_the_stored_links_without_computing_them(
    client_as, reviewer_user, monkeypatch
):
    # Stored links that a computation would not give: the page must show these.
    stored = [{"step": 1, "paragraph": 3, "score": 1.0, "missed": False},
              {"step": 2, "paragraph": 1, "score": 0.2, "missed": True}]  # fmt: skip
    trace = _trace(step_links=stored)

    def refuse(*args, **kwargs):
        raise AssertionError("the review page recomputed the stored step links")

    monkeypatch.setattr(presentation, "step_links_compute", refuse)
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert 'href="#p-3" class="carried"' in body and 'href="#p-1" class="carried"' in body
    assert 'href="#p-2"' not in body and "missed (0.20)" in body


def test_a_trace_checked_before_links_were_stored_still_shows_them(client_as, reviewer_user):
    trace = _trace()  # its checks have coverage but no step_links
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert 'href="#p-2" class="carried"' in body and "missed (0.00)" in body


def test_a_thought_the_reviewer_edited_is_linked_by_its_own_paragraphs(client_as, reviewer_user):
    from curation.models import TraceReview

    stored = [{"step": 1, "paragraph": 2, "score": 1.0, "missed": False},
              {"step": 2, "paragraph": None, "score": 0.0, "missed": True}]  # fmt: skip
    trace = _trace(step_links=stored)
    edited = "Factor the quadratic polynomial first.\n\nThen x = 4.\n\nDone."
    TraceReview.objects.create(trace=trace, edited_thought=edited)
    body = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    assert 'href="#p-1" class="carried"' in body and 'href="#p-2"' not in body
