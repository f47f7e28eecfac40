"""XSS payloads typed into a step, a note, a trace and a reviewer comment execute nowhere."""

import pytest

from annotator.models import Annotation
from curation import services
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOADS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=\"alert('img')\">",
    "<svg onload=alert('svg')>",
    "[link](javascript:alert('link'))",
    "$<img src=y onerror=alert('math')>$",
    '"><iframe src="javascript:alert(\'frame\')"></iframe>',
]
TEXT = "Wait. " + " ".join(PAYLOADS)
STEPS = [{"kind": "attempt", "text": TEXT, "notes": PAYLOADS}]


def visit(page, path):
    page.goto(path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(250)


def test_payloads_stay_inert_on_every_page(page, log_in, annotator_user, reviewer_user):
    record = {"steps": STEPS, "final_answer": TEXT}
    trace = TraceFactory(annotation__annotator=annotator_user, annotation__steps=STEPS,
                         thought=TEXT, solution=TEXT, record=record)  # fmt: skip
    services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="return",
                           comment=TEXT)  # fmt: skip
    Annotation.objects.filter(pk=trace.annotation_id).update(steps=STEPS, final_answer=TEXT)

    log_in("ann")
    for path in ("/", f"/annotations/{trace.annotation_id}/"):
        visit(page, path)
    page.context.clear_cookies()
    log_in("rev")
    for path in (f"/review/{trace.pk}/", f"/traces/{trace.pk}/", "/review/", "/traces/",
                 f"/annotations/{trace.annotation_id}/"):  # fmt: skip
        visit(page, path)
    assert page.dialogs == []
    assert page.locator("img[src=x], img[src=y], svg, iframe").count() == 0
