"""The step judge: a judge job through the job engine against the simulated endpoint (the
real openai client), its answer checked before any rating is kept, shown to reviewers,
accepted or overridden, and exported."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings

from curation.judging import services
from curation.judging.prompts import judge_prompt_active, judge_prompt_create
from curation.judging.running import judge_run
from curation.models import JudgeJob, JudgePrompt, StepRating, TraceStep
from devtools.simulator import SimulatedLLM
from expansion.jobs import engine
from expansion.models import LLMEndpoint
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db

THOUGHT = "Try x = 3.\n\nBut 3 + 3 = 6, not 8.\n\nSo x = 4, since 4 + 4 = 8."
RECORD = {
    "steps": [{"kind": "attempt", "text": "Guess 3", "notes": ["Doubling"]},
              {"kind": "correction", "text": "Four works", "notes": []}],
    "final_answer": "4",
}  # fmt: skip


@pytest.fixture
def simulator():
    with SimulatedLLM(seconds_per_token=0.0, target_tokens=50, chunk_interval=0.0) as sim:
        yield sim


@pytest.fixture
def endpoint(simulator, settings):
    settings.EXPANSION_MAX_ATTEMPTS = 3
    return LLMEndpoint.objects.create(
        name="judge-sim", base_url=simulator.base_url, model="simulated-journey",
        is_simulated=True, max_in_flight=4, max_tokens=4000, timeout_seconds=5,
        price_input_per_million="1.00", price_output_per_million="2.00",
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.01)


@pytest.fixture
def trace():
    # A fixed statement: the simulated judge draws its tags from the request's text, which
    # must not depend on how many problems earlier tests made.
    return TraceFactory(thought=THOUGHT, record=RECORD,
                        annotation__problem__statement="Find $x$ with $x + x = 8$.")  # fmt: skip


def _judge(trace, endpoint, **kwargs):
    job, created = services.judge_request(trace_id=trace.pk, endpoint=endpoint, **kwargs)
    judge_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_a_judge_job_rates_every_step_through_the_engine(trace, endpoint, simulator):
    job = _judge(trace, endpoint)
    assert job.status == "succeeded" and job.attempts == 1
    assert [r["step"] for r in job.ratings] == [1, 2, 3]
    assert [r["correctness"] for r in job.ratings] == [1, -1, 1]  # "not 8" is wrong
    assert all(r["reason"] for r in job.ratings)
    assert job.request["response_format"]["json_schema"]["name"] == "step_ratings"
    assert "[Step 2]\nBut 3 + 3 = 6, not 8." in job.request["messages"][1]["content"]
    assert "Step 1 (attempt): Guess 3" in job.request["messages"][1]["content"]
    assert job.prompt_tokens and job.completion_tokens and job.cost is not None
    standing = TraceStep.objects.filter(trace=trace, retired_at__isnull=True).order_by("number")
    assert job.step_ids == [s.pk for s in standing]
    assert simulator.stats()["completed"] == 1


def test_asking_again_gives_the_same_job(trace, endpoint, simulator):
    first = _judge(trace, endpoint)
    again, created = services.judge_request(trace_id=trace.pk, endpoint=endpoint)
    assert again.pk == first.pk and not created
    assert simulator.stats()["requests"] == 1


@pytest.mark.parametrize("mode, message", [
    ("malformed", "not valid JSON"),
    ("short", "rates 2 steps; the trace has 3"),
    ("out_of_scale", "correctness 2 is not -1, 0 or 1"),
    ("unknown_tag", "unknown faithfulness tag 'mostly'"),
])  # fmt: skip
def test_an_unusable_answer_is_retried_then_fails_with_its_text_kept(
    trace, endpoint, simulator, mode, message
):
    simulator.configure(judge_answer=mode)
    job = _judge(trace, endpoint)
    assert job.status == "failed" and job.error_kind == "invalid_output"
    assert message in job.error_message and job.attempts == 3
    assert job.ratings == []  # never a partial set
    assert job.content  # the raw answer is kept
    assert simulator.stats()["completed"] == 3


def test_one_bad_answer_then_a_good_one_succeeds(trace, endpoint, simulator):
    simulator.configure(judge_answer="short", judge_answer_next=1)
    job = _judge(trace, endpoint)
    assert job.status == "succeeded" and job.attempts == 2 and len(job.ratings) == 3


def test_an_endpoint_without_json_schema_gets_a_json_block_asked_for(trace, endpoint):
    endpoint.supports_json_schema = False
    endpoint.save()
    job = _judge(trace, endpoint)
    assert "response_format" not in job.request
    assert "```json block" in job.request["messages"][1]["content"]
    assert job.content.startswith("```json") and job.status == "succeeded"


def test_judge_prompt_versions_are_immutable_with_a_content_hash():
    first = judge_prompt_active()
    changed = judge_prompt_create(name=first.name, system=first.system + " Be brief.",
                                  instructions=first.instructions, activate=True)  # fmt: skip
    assert changed.version == first.version + 1 and changed.content_hash != first.content_hash
    first.refresh_from_db()
    assert not first.is_active and JudgePrompt.objects.get(is_active=True) == changed


def test_the_api_queues_a_job_and_the_steps_show_the_judges_ratings(
    api_as, reviewer_user, trace, endpoint
):
    api = api_as(reviewer_user)
    with override_settings(LLM_BASE_URL="", LLM_MODEL="", LLM_SIMULATOR_URL=endpoint.base_url):
        queued = api.post(f"/api/traces/{trace.pk}/judge/", {"endpoint": endpoint.pk},
                          format="json")  # fmt: skip
    assert queued.status_code == 202 and queued.json()["created"] == 1
    job_id = queued.json()["jobs"][0]
    judge_run(job_id=job_id)
    body = api.get(f"/api/traces/{trace.pk}/steps/").json()
    assert body["judge_job"]["status"] == "succeeded" and body["judged_by"]["id"] == job_id
    assert [s["judge"]["correctness"] for s in body["steps"]] == [1, -1, 1]
    again = api.post(f"/api/traces/{trace.pk}/judge/", {"endpoint": endpoint.pk}, format="json")
    assert again.json() == {"jobs": [job_id], "created": 0}
    bad = api.post(f"/api/traces/{trace.pk}/judge/", {"endpoint": "x"}, format="json")
    assert bad.status_code == 400 and "by its id" in json.dumps(bad.json())


def test_a_bulk_run_covers_the_filtered_queue(api_as, reviewer_user, endpoint):
    flagged = [TraceFactory(thought=THOUGHT, flag_leakage=True) for _ in range(2)]
    TraceFactory(thought=THOUGHT)
    api = api_as(reviewer_user)
    response = api.post("/api/judge-runs/?checks=leakage", {"endpoint": endpoint.pk},
                        format="json")  # fmt: skip
    assert response.status_code == 202
    jobs = JudgeJob.objects.filter(pk__in=response.json()["jobs"])
    assert sorted(job.trace_id for job in jobs) == sorted(t.pk for t in flagged)


def test_nobody_asks_the_judge_about_their_own_annotation(api_as, trace, endpoint):
    from django.contrib.auth.models import Group

    author = trace.annotation.annotator
    author.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    response = api_as(author).post(f"/api/traces/{trace.pk}/judge/", {}, format="json")
    assert response.status_code == 403 and "your own annotation" in response.json()["detail"]


def test_accepting_the_judge_keeps_ones_own_overrides(client_as, reviewer_user, trace, endpoint):
    job = _judge(trace, endpoint)
    client = client_as(reviewer_user)
    client.post(f"/review/{trace.pk}/steps/1/rate/", {"correctness": "-1", "version": "0"})
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    assert "Judge: <strong>-1</strong>, faithful" in page  # step 2's, with its reason
    assert "does not hold" in page and 'id="accept-judge"' in page
    response = client.post(f"/review/{trace.pk}/judge/accept/", follow=True)
    assert "ratings of 2 steps are now yours" in response.content.decode()
    mine = {r.step.number: r.correctness for r in
            StepRating.objects.filter(rater=reviewer_user).select_related("step")}  # fmt: skip
    assert mine == {1: -1, 2: -1, 3: 1}  # step 1 is the reviewer's override
    job.refresh_from_db()
    assert job.ratings[0]["correctness"] == 1  # the judge's stays stored


def test_the_export_takes_the_judges_labels_or_a_persons_first(
    tmp_path, reviewer_user, admin_user, trace, endpoint
):
    from curation import services as curation

    curation.review_decide(trace_id=trace.pk, reviewer=admin_user, decision="approve")
    _judge(trace, endpoint)
    StepRating.objects.create(step=TraceStep.objects.get(trace=trace, number=1),
                              rater=reviewer_user, correctness=0)  # fmt: skip

    def export(labels):
        folder = tmp_path / labels
        call_command("export_dataset", "--format", "prm", "--labels", labels, "--output",
                     str(folder), stdout=StringIO(), stderr=StringIO())  # fmt: skip
        return json.loads((folder / "train.jsonl").read_text())

    assert export("judge")["labels"] == [True, False, True]
    assert export("human-else-judge")["labels"] == [False, False, True]  # step 1 is a 0
    human = export("human")  # only step 1 is rated by a person: a prefix of one
    assert human["labels"] == [False] and human["completions"] == ["Try x = 3."]


def test_the_schema_describes_the_judge_endpoints(api_as, admin_user):
    schema = api_as(admin_user).get("/api/schema/", {"format": "json"}).json()
    for path in ("/api/traces/{id}/judge/", "/api/judge-runs/"):
        assert set(schema["paths"][path]) == {"post"}
        assert "202" in schema["paths"][path]["post"]["responses"]
    runs = schema["paths"]["/api/judge-runs/"]["post"]["parameters"]
    assert "checks" in {p["name"] for p in runs}
    step = schema["components"]["schemas"]["TraceStep"]["properties"]
    assert step["judge"]["nullable"] is True


def test_with_after_expansion_a_succeeded_trace_is_judged(trace, endpoint, settings):
    from expansion.signals import trace_succeeded

    settings.LLM_BASE_URL, settings.LLM_MODEL = "", ""
    settings.LLM_SIMULATOR_URL = endpoint.base_url
    trace_succeeded.send_robust(sender=type(trace), trace_id=trace.pk)
    assert not JudgeJob.objects.exists()  # the default judge prompt does not
    JudgePrompt.objects.filter(pk=judge_prompt_active().pk).update(after_expansion=True)
    other = TraceFactory(thought=THOUGHT)
    trace_succeeded.send_robust(sender=type(other), trace_id=other.pk)
    job = JudgeJob.objects.get(trace=other)
    assert job.status == "queued" and len(job.step_ids) == 3


def test_editing_a_judge_prompt_in_the_admin_saves_a_new_version(client_as, admin_user):
    first = judge_prompt_active()
    form = {"name": first.name, "system": first.system, "instructions": "Rate harshly.",
            "is_active": "on"}  # fmt: skip
    response = client_as(admin_user).post(f"/admin/curation/judgeprompt/{first.pk}/change/", form)
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.instructions != "Rate harshly." and not first.is_active
    newer = JudgePrompt.objects.get(is_active=True)
    assert newer.version == 2 and newer.instructions == "Rate harshly."


def _judged(trace, ratings, status="succeeded"):
    prompt = judge_prompt_active()
    endpoint = LLMEndpoint.objects.get_or_create(name="j", base_url="http://127.0.0.1:9/v1",
                                                 model="m")[0]  # fmt: skip
    full = [{"step": n, "correctness": c, "faithfulness": f, "reason": "r"}
            for n, (c, f) in enumerate(ratings, start=1)]  # fmt: skip
    return JudgeJob.objects.create(
        trace=trace, prompt=prompt, endpoint=endpoint, params={}, step_ids=[], thought_hash="",
        idempotency_key=f"k{trace.pk}-{status}", status=status,
        ratings=full if status == "succeeded" else [],
        **(JudgeJob.findings(full) if status == "succeeded" else {}),
    )  # fmt: skip


def test_the_queue_filters_on_what_the_judge_found(client_as, api_as, reviewer_user):
    invented = TraceFactory()
    _judged(invented, [(1, "invented"), (1, "faithful")])
    unrecorded = TraceFactory()
    _judged(unrecorded, [(-1, "off_record")])
    records_own_slip = TraceFactory()
    _judged(records_own_slip, [(-1, "faithful"), (1, "early_fix")])
    failed = TraceFactory()
    _judged(failed, [], status="failed")
    TraceFactory()  # never judged

    def queue(*findings):
        query = "&".join(f"judge={f}" for f in findings)
        body = api_as(reviewer_user).get(f"/api/review-queue/?{query}").json()
        return {row["id"] for row in body["results"]}

    assert queue("invented") == {invented.pk}
    assert queue("unrecorded_error") == {unrecorded.pk}  # the record's own slip is not one
    assert queue("early_fix") == {records_own_slip.pk}
    assert queue("failed") == {failed.pk}
    assert queue("invented", "early_fix") == set()
    bad = api_as(reviewer_user).get("/api/review-queue/?judge=maybe")
    assert bad.status_code == 400 and "judge" in bad.json()
    page = client_as(reviewer_user).get("/review/?judge=unrecorded_error").content.decode()
    assert "judge: unrecorded error" in page and f"#{unrecorded.pk}<" in page
    assert f"#{invented.pk}<" not in page


def test_the_review_page_follows_a_running_judge_job_until_its_ratings_are_ready(
    client_as, reviewer_user, trace, endpoint
):
    job, _ = services.judge_request(trace_id=trace.pk, endpoint=endpoint)
    client = client_as(reviewer_user)
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    state_url = f"/review/{trace.pk}/judge/state/"
    assert f'hx-get="{state_url}"' in page and "waiting for a worker" in page
    JudgeJob.objects.filter(pk=job.pk).update(status="running", attempts=1, progress_tokens=120)
    running = client.get(state_url).content.decode()
    assert "about 120 tokens so far · attempt 1" in running and "hx-trigger" in running
    JudgeJob.objects.filter(pk=job.pk).update(status="queued")  # not a stale run's to take over
    judge_run(job_id=job.pk)
    done = client.get(state_url).content.decode()
    assert "succeeded" in done and "hx-get" not in done  # it stops asking
    assert 'id="judge-ready"' in done and f"/review/{trace.pk}/?mode=steps" in done
    shown = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    assert "Judge: <strong>-1</strong>" in shown and 'id="judge-ready"' not in shown


def test_a_failed_judge_job_says_why_on_the_review_page(client_as, reviewer_user, trace, endpoint):
    job, _ = services.judge_request(trace_id=trace.pk, endpoint=endpoint)
    JudgeJob.objects.filter(pk=job.pk).update(
        status="failed", error_kind="invalid_output", error_message="rated 2 of 3 steps"
    )
    state = client_as(reviewer_user).get(f"/review/{trace.pk}/judge/state/").content.decode()
    assert "failed" in state and "invalid_output: rated 2 of 3 steps" in state
    assert "hx-get" not in state
