"""A Chinese record through the whole expansion: the real openai client, the simulated
endpoint (whose sentences are English), a checked trace, the review queue."""

import pytest

from annotator import services as annotator_services
from expansion import services
from tests.expansion.test_chinese_checks import STEPS
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese_submitted(db, annotator_user, settings, endpoint):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    settings.LLM_SIMULATOR_URL = endpoint.base_url
    ProblemFactory(statement="两个数的和是 $10$，积是 $21$，求较大的数。", reference_answer="7")
    draft = annotator_services.annotation_claim(annotator=annotator_user)
    annotator_services.annotation_save(
        annotation_id=draft.pk, user=annotator_user, base_version=1, steps=STEPS, final_answer="7"
    )
    return annotator_services.annotation_submit(annotation_id=draft.pk, user=annotator_user)


def test_an_english_trace_quoting_a_chinese_record_is_flagged_as_mixing_languages(
    chinese_submitted, endpoint, client_as, reviewer_user
):
    (trace,) = services.traces_request(annotation=chinese_submitted, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    assert trace.status == "succeeded", trace.error_message
    language = trace.checks["language"]
    # English sentences around the record's Chinese: the record is zh, the thought mostly en,
    # and the paragraphs that quote the record switch.
    assert language["record"] == "zh" and language["trace"] == "en" and language["switches"]
    assert trace.flag_language_mix
    # Coverage compares what reads the same in both: the numbers and formulas are all there.
    assert trace.checks["coverage_basis"] == "neutral" and not trace.flag_low_coverage
    page = client_as(reviewer_user).get("/review/", {"checks": "language_mix"}).content.decode()
    assert f'href="/review/{trace.pk}/"' in page
