import pytest

from expansion import services
from expansion.models import LLMEndpoint, Trace

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished(submitted, endpoint, simulator):
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    services.trace_run(trace_id=trace.pk)
    trace.refresh_from_db()
    return trace


def test_traces_api_lists_filters_and_details(api_as, reviewer_user, finished, endpoint):
    api = api_as(reviewer_user)
    listed = api.get("/api/traces/", {"status": "succeeded", "endpoint": endpoint.pk}).json()
    assert listed["count"] == 1 and "thought" not in listed["results"][0]
    assert api.get("/api/traces/", {"status": "failed"}).json()["count"] == 0
    assert api.get("/api/traces/", {"status": "nope"}).status_code == 400
    detail = api.get(f"/api/traces/{finished.pk}/").json()
    fields = "thought solution reasoning finish_reason prompt_tokens completion_tokens cost checks"
    for field in [*fields.split(), "error_kind", "error_message"]:
        assert field in detail
    assert detail["status"] == "succeeded"


def test_annotators_cannot_read_traces(api_as, annotator_user, finished):
    assert api_as(annotator_user).get("/api/traces/").status_code == 403


def test_expand_queues_more_jobs_with_other_parameters(api_as, reviewer_user, submitted, endpoint):
    api = api_as(reviewer_user)
    response = api.post(
        f"/api/annotations/{submitted.pk}/expand/",
        {"endpoint": endpoint.pk, "samples": 2, "temperature": 0.2},
        format="json",
    )
    assert response.status_code == 202
    jobs = Trace.objects.filter(pk__in=response.json()["job_ids"])
    assert jobs.count() == 2 and {j.params["temperature"] for j in jobs} == {0.2}
    again = api.post(f"/api/annotations/{submitted.pk}/expand/", {"endpoint": endpoint.pk},
                     format="json")  # fmt: skip
    assert set(again.json()["job_ids"]).isdisjoint(response.json()["job_ids"])


def test_expand_refuses_drafts_and_annotators(api_as, reviewer_user, annotator_user, submitted):
    submitted.status = "draft"
    submitted.save()
    api = api_as(reviewer_user)
    assert api.post(f"/api/annotations/{submitted.pk}/expand/", {}).status_code == 400
    assert (
        api_as(annotator_user).post(f"/api/annotations/{submitted.pk}/expand/", {}).status_code
        == 403
    )


def test_trace_page_renders_checks_and_sanitized_text(client_as, reviewer_user, finished):
    Trace.objects.filter(pk=finished.pk).update(thought="Wait <script>alert(1)</script> **ok**")
    body = client_as(reviewer_user).get(f"/traces/{finished.pk}/").content.decode()
    assert "<strong>ok</strong>" in body and "<script>alert(1)" not in body
    assert "Coverage" in body and "simulated" in body
    assert 'hx-trigger="every 1s"' not in body  # finished: no polling


def test_a_running_job_page_polls_for_progress(client_as, reviewer_user, submitted, endpoint):
    (trace,) = services.traces_request(annotation=submitted, endpoint=endpoint)
    Trace.objects.filter(pk=trace.pk).update(status="running", progress_tokens=120, content="Hmm")
    client = client_as(reviewer_user)
    body = client.get(f"/traces/{trace.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in body and "about 120 tokens" in body
    fragment = client.get(f"/traces/{trace.pk}/progress/").content.decode()
    assert "<html" not in fragment and "about 120 tokens" in fragment


def test_every_page_says_when_the_endpoint_is_simulated(client_as, reviewer_user, settings):
    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    assert "simulated endpoint" in client_as(reviewer_user).get("/").content.decode()
    settings.LLM_BASE_URL, settings.LLM_MODEL = "http://127.0.0.1:9/v1", "m"
    assert "simulated endpoint" not in client_as(reviewer_user).get("/").content.decode()


def test_huge_ids_in_filters_are_refused_not_crashed(api_as, reviewer_user, client_as):
    huge = "796770410482196545536"
    assert api_as(reviewer_user).get("/api/traces/", {"annotation": huge}).status_code == 400
    assert api_as(reviewer_user).get("/api/review-queue/", {"endpoint": huge}).status_code == 400
    assert client_as(reviewer_user).get("/traces/", {"annotation": huge}).status_code == 200


def test_the_job_list_filters_by_endpoint_and_prompt_and_refreshes_while_jobs_run(
    client_as, reviewer_user, submitted, endpoint, finished
):
    other = LLMEndpoint.objects.create(name="other", base_url="https://o.example/v1", model="m")
    (queued,) = services.traces_request(annotation=submitted, endpoint=other)
    client = client_as(reviewer_user)

    def listed(**params) -> tuple[set[int], str]:
        body = client.get("/traces/", params).content.decode()
        return {t.pk for t in Trace.objects.all() if f'href="/traces/{t.pk}/"' in body}, body

    ids, body = listed(endpoint=other.pk)
    assert ids == {queued.pk} and 'hx-trigger="every 2s"' in body  # a job is queued
    assert f'<option value="{other.pk}" selected>other</option>' in body
    ids, body = listed(endpoint=endpoint.pk, prompt=finished.prompt_id)
    assert ids == {finished.pk} and 'hx-trigger="every 2s"' not in body  # all finished
    assert f'<option value="{other.pk}" selected>other</option>' not in body
    assert listed(prompt=finished.prompt_id + 1000)[0] == set()


def test_a_refused_filter_on_the_job_list_is_said_and_the_other_filters_still_apply(
    client_as, reviewer_user, finished, endpoint
):
    other = LLMEndpoint.objects.create(name="other", base_url="https://o.example/v1", model="m")
    client = client_as(reviewer_user)

    def listed(endpoint_id) -> str:
        params = {"endpoint": endpoint_id, "created_since": "not a day"}
        return client.get("/traces/", params).content.decode()

    body = listed(endpoint.pk)
    assert "Some filters were ignored." in body and "Created since" in body
    assert f"/traces/{finished.pk}/" in body
    assert f"/traces/{finished.pk}/" not in listed(other.pk)
