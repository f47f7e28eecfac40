"""XSS payloads typed into a step, a note, a trace, a reviewer comment and the filters of the
list pages execute nowhere: not with the Content-Security-Policy, and not without it either
(the sanitizer and the templates' escaping must hold alone; the policy is a second wall).

Every page visited is checked: no element or attribute the payloads would inject, no dialog,
no CSP violation reported, and the text a person typed shown as text.
"""

from urllib.parse import urlencode

import pytest

from annotator.models import Annotation, Benchmark, BenchmarkItem, Contamination
from curation import services
from curation.analytics.filters import AnalyticsFilterForm
from curation.filters import QueueFilterForm
from expansion.filters import TraceFilterForm
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db(transaction=True)

PAYLOADS = [
    "<script>alert('script')</script>",
    "<img src=x onerror=\"alert('img')\">",
    "<svg onload=alert('svg')>",
    "[link](javascript:alert('link'))",
    "$<img src=y onerror=alert('math')>$",
    '"><iframe src="javascript:alert(\'frame\')"></iframe>',
    "' autofocus onfocus='alert(\"attr\")' x='",
    "$\\href{javascript:alert('katex')}{x}$",
]
TEXT = "Wait. " + " ".join(PAYLOADS)
STEPS = [{"kind": "attempt", "text": TEXT, "notes": PAYLOADS}]

# The parameters each list page reads from its query string (search, filters, drill-down).
REFLECTED = {
    "/review/": [*QueueFilterForm.base_fields, *QueueFilterForm.ALIASES, "page"],
    "/problems/": ["q", "source", "subject", "level", "status", "contamination", "page"],
    "/traces/": [*TraceFilterForm.base_fields, *TraceFilterForm.ALIASES, "page"],
    "/analytics/traces/": [*AnalyticsFilterForm.base_fields, *AnalyticsFilterForm.ALIASES, "page"],
}  # fmt: skip

# Anything the payloads could leave behind in the DOM, checked by the page itself.
INJECTED = """() => {
  const found = [];
  const tags = 'img[src=x], img[src=y], iframe, object, embed, script:not([src^="/static/"])';
  for (const el of document.querySelectorAll(tags))
    found.push(el.outerHTML.slice(0, 120));
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const value = attr.value.trim().toLowerCase();
      const url = ['href', 'src', 'action', 'formaction'].includes(attr.name);
      if (attr.name.startsWith('on') || (url && value.startsWith('javascript:')))
        found.push(el.tagName + ' ' + attr.name + '=' + attr.value.slice(0, 80));
    }
  }
  return found;
}"""
TEXT_BOXES = """(names) => [...document.querySelectorAll('input')]
  .filter((box) => names.includes(box.name) && ['text', 'search'].includes(box.type))
  .map((box) => [box.name, box.value])"""
INLINE_RUNS = """() => { const probe = document.createElement('script');
  probe.textContent = 'window.inlineRan = true'; document.head.appendChild(probe);
  const ran = window.inlineRan === true; probe.remove(); return ran; }"""
LISTEN = """document.addEventListener('securitypolicyviolation', (event) =>
  window.reportViolation(event.violatedDirective + ' ' + (event.blockedURI || 'inline')
                         + ' at ' + location.pathname));"""


def _strip_csp(route):
    response = route.fetch(max_redirects=0)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-security-policy"}
    route.fulfill(response=response, headers=headers)


@pytest.fixture(params=["csp-on", "csp-off"])
def guarded_page(request, page):
    """The page, with or without the CSP header; CSP violations are collected."""
    page.violations, page.csp_on = [], request.param == "csp-on"
    page.context.expose_function("reportViolation", lambda text: page.violations.append(text))
    page.context.add_init_script(LISTEN)
    if request.param == "csp-off":
        page.route("**/*", _strip_csp)
    return page


def visit(page, path):
    response = page.goto(path)
    page.wait_for_load_state("load")
    page.wait_for_timeout(250)
    assert response.status < 500, path
    assert ("content-security-policy" in response.headers) is page.csp_on, path
    found = page.evaluate(INJECTED)
    assert found == [], f"{path}: {found}"
    assert page.dialogs == [], f"{path}: {page.dialogs}"
    assert page.violations == [], f"{path}: {page.violations}"
    if not page.csp_on:  # without the header an inline script would run: the sanitizer alone
        assert page.evaluate(INLINE_RUNS), path
    return page.locator("body").inner_text()


@pytest.fixture
def world(annotator_user, reviewer_user):
    record = {"steps": STEPS, "final_answer": TEXT}
    trace = TraceFactory(annotation__annotator=annotator_user, annotation__steps=STEPS,
                         thought=TEXT, solution=TEXT, record=record)  # fmt: skip
    services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="return",
                           comment=TEXT)  # fmt: skip
    Annotation.objects.filter(pk=trace.annotation_id).update(steps=STEPS, final_answer=TEXT)
    benchmark = Benchmark.objects.create(name="bench")
    item = BenchmarkItem.objects.create(
        benchmark=benchmark,
        line=1,
        external_id=TEXT[:200],
        text=TEXT,
        normalized=TEXT,
        normalized_hash="0",
    )
    Contamination.objects.create(problem=trace.annotation.problem, benchmark=benchmark,
                                 item=item, exact=False, overlap=1, ngram_size=8,
                                 ngrams=PAYLOADS)  # fmt: skip
    return trace


def test_stored_payloads_stay_inert_on_every_page(guarded_page, log_in, world):
    page, trace = guarded_page, world
    log_in("ann")
    assert f"Reviewer: {TEXT}" in visit(page, "/")  # the returned work, with the comment
    editor = visit(page, f"/annotations/{trace.annotation_id}/")
    assert f"Returned by a reviewer: {TEXT}" in editor
    assert page.input_value("textarea[name=text]") == TEXT
    assert page.input_value("[name=final_answer]") == TEXT
    page.context.clear_cookies()
    log_in("rev")
    review = visit(page, f"/review/{trace.pk}/")
    assert "by rev" in review and TEXT in review  # the history keeps the comment as typed
    assert "Wait. <svg onload=alert('svg')>" in review  # Markdown shows a stray tag as text
    assert "Wait. <svg onload=alert('svg')>" in visit(page, f"/traces/{trace.pk}/")
    assert "Final answer: Wait. <script>alert('script')</script>" in visit(
        page, f"/annotations/{trace.annotation_id}/"
    )
    visit(page, "/review/")  # the trace was returned: nothing awaits review
    problem = visit(page, f"/problems/{trace.annotation.problem_id}/")
    assert PAYLOADS[0] in problem and PAYLOADS[2] in problem  # the shared n-grams, as text
    for path in ("/traces/", "/analytics/traces/"):
        assert trace.annotation.problem.external_id in visit(page, path)


@pytest.mark.parametrize("path", REFLECTED)
def test_reflected_payloads_stay_inert_on_list_pages(guarded_page, log_in, world, path):
    """Every parameter the page reads carries each payload; the search and filter boxes show
    it back as typed text."""
    page = guarded_page
    log_in("rev")
    for payload in PAYLOADS:
        query = urlencode({name: payload for name in REFLECTED[path]})
        visit(page, f"{path}?{query}")
        boxes = page.evaluate(TEXT_BOXES, REFLECTED[path])
        # The job list filters only by ids, states and days: it has no box for free text.
        if path != "/traces/":
            assert boxes, f"{path}: no search or filter box shows the text"
        assert {value for _, value in boxes} <= {payload}, f"{path}: {boxes}"
