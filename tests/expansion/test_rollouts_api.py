"""Rollout campaigns through the API, ``manage.py rollouts`` and the admin: the same service
behind each, its refusals as clear errors, and the lifecycle steered from outside."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from expansion.models import LLMEndpoint, RolloutCampaign, RolloutSample, SolvePrompt
from expansion.rollouts.prompts import solve_prompt_default
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db

SOURCE = "api-rollouts"


@pytest.fixture
def problems(db):
    return [ProblemFactory(source=SOURCE, statement=f"What is {a}+{b}?",
                           reference_answer=str(a + b)) for a, b in ((2, 3), (10, 4))]  # fmt: skip


def _create(api, to, **body):
    body = {"name": "round-1", "endpoint": to.pk, "samples_per_problem": 3,
            "filters": {"source": SOURCE}, **body}  # fmt: skip
    return api.post("/api/rollout-campaigns/", body, format="json")


def test_an_admin_runs_a_campaign_through_the_api(
    api_as, admin_user, reviewer_user, endpoint, problems, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    api = api_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        created = _create(api, endpoint)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["problems"] == 2 and body["state"] == "active" and body["without_reference"] == 0
    assert body["temperature"] == 0.7 and body["top_p"] == 0.95
    assert body["prompt"] == solve_prompt_default().pk  # none given: the default
    campaign = RolloutCampaign.objects.get(pk=body["id"])
    shown = api_as(reviewer_user).get(f"/api/rollout-campaigns/{campaign.pk}/").json()
    assert shown["summary"]["by_status"] == {"succeeded": 6}
    assert sum(shown["summary"]["by_verdict"].values()) == 6
    samples = api_as(reviewer_user).get(
        f"/api/rollout-campaigns/{campaign.pk}/samples/?verdict=correct"
    ).json()  # fmt: skip
    correct = RolloutSample.objects.filter(campaign=campaign, verdict="correct").count()
    assert samples["count"] == correct
    assert all(s["verdict"] == "correct" and s["answer"] == s["reference_answer"]
               for s in samples["results"])  # fmt: skip
    rerun = api.post(f"/api/rollout-campaigns/{campaign.pk}/run/")
    assert rerun.status_code == 200 and rerun.json()["sent"] == 0  # finished: nothing queued


def test_pause_resume_and_cancel_through_the_api(api_as, admin_user, endpoint, problems):
    api = api_as(admin_user)
    campaign = _create(api, endpoint).json()  # no worker runs: the samples stay queued
    url = f"/api/rollout-campaigns/{campaign['id']}"
    assert api.post(f"{url}/pause/").json()["state"] == "paused"
    refused = api.post(f"{url}/run/")
    assert refused.status_code == 400 and "is paused: resume it first" in refused.json()["detail"]
    resumed = api.post(f"{url}/resume/").json()
    assert resumed["state"] == "active" and resumed["sent"] == 6
    cancelled = api.post(f"{url}/cancel/").json()
    assert cancelled["state"] == "cancelled" and cancelled["cancelled"] == 6
    assert api.post(f"{url}/resume/").status_code == 400


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"samples_per_problem": 0}, "samples_per_problem", "greater than or equal to 1"),
        ({"samples_per_problem": 257}, "samples_per_problem", "less than or equal to 256"),
        ({"filters": {"source": "no-such-source"}}, "detail", "No problem matches the filters"),
        ({"endpoint": 999999}, "endpoint", "does not exist"),
    ],
)
def test_bad_campaigns_are_refused_with_the_reason(api_as, admin_user, endpoint, problems, body,
                                                   field, message):  # fmt: skip
    refused = _create(api_as(admin_user), endpoint, **body)
    assert refused.status_code == 400 and message in str(refused.json()[field])
    assert not RolloutCampaign.objects.exists()


def test_an_inactive_endpoint_or_a_prompt_without_boxed_is_refused(
    api_as, admin_user, endpoint, problems
):
    api = api_as(admin_user)
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    refused = _create(api, endpoint)
    assert refused.status_code == 400 and "is inactive" in refused.json()["detail"]
    prompt = api.post("/api/solve-prompts/", {
        "name": "terse", "system": "Solve it.", "instructions": "Solve: {problem}",
        "thought_format": "think",
    }, format="json")  # fmt: skip
    assert prompt.status_code == 400 and "\\boxed{}" in str(prompt.json()["instructions"])
    assert not SolvePrompt.objects.filter(name="terse").exists()


def test_a_campaign_over_problems_without_a_reference_says_so(api_as, admin_user, endpoint):
    ProblemFactory(source=SOURCE, statement="What is 1+1?", reference_answer="")
    body = _create(api_as(admin_user), endpoint).json()
    assert body["without_reference"] == 1


def test_reviewers_read_campaigns_but_only_admins_steer_them(
    api_as, admin_user, reviewer_user, annotator_user, endpoint, problems
):
    campaign = _create(api_as(admin_user), endpoint).json()
    reviewer = api_as(reviewer_user)
    assert reviewer.get("/api/rollout-campaigns/").json()["count"] == 1
    assert _create(reviewer, endpoint, name="mine").status_code == 403
    assert reviewer.post(f"/api/rollout-campaigns/{campaign['id']}/cancel/").status_code == 403
    assert api_as(annotator_user).get("/api/rollout-campaigns/").status_code == 403
    assert reviewer.get("/api/solve-prompts/").status_code == 403


def test_the_command_creates_lists_and_steers_a_campaign(endpoint, problems):
    out = StringIO()
    call_command("rollouts", "create", "round-cli", "--endpoint", endpoint.name, "--samples", "2",
                 "--source", SOURCE, stdout=out)  # fmt: skip
    assert "2 problems x 2 samples" in out.getvalue()
    campaign = RolloutCampaign.objects.get(name="round-cli")
    out = StringIO()
    call_command("rollouts", "pause", "round-cli", stdout=out)
    assert "paused" in out.getvalue() and "queued 4" in out.getvalue()
    out = StringIO()
    call_command("rollouts", "list", stdout=out)
    assert f"{campaign.pk}\tround-cli\tpaused" in out.getvalue()
    with pytest.raises(CommandError, match="is paused: resume it first"):
        call_command("rollouts", "run", str(campaign.pk))
    with pytest.raises(CommandError, match="between 1 and 256"):
        call_command("rollouts", "create", "too-many", "--endpoint", endpoint.name,
                     "--samples", "300")  # fmt: skip
    with pytest.raises(CommandError, match="No endpoint 'nowhere'"):
        call_command("rollouts", "create", "r", "--endpoint", "nowhere")


def test_an_admin_creates_and_cancels_a_campaign_in_the_admin(client_as, admin_user, endpoint,
                                                             problems):  # fmt: skip
    client = client_as(admin_user)
    form = {
        "name": "round-admin",
        "endpoint": endpoint.pk,
        "prompt": "",
        "samples_per_problem": "2",
        "temperature": "0.7",
        "top_p": "0.95",
        "max_tokens": "",
        "source": SOURCE,
        "subject": "",
        "level": "",
        "status": "",
    }
    refused = client.post("/admin/expansion/rolloutcampaign/add/",
                          {**form, "source": "nothing-here"})  # fmt: skip
    assert (
        refused.status_code == 200 and "No problem matches the filters" in refused.content.decode()
    )
    assert not RolloutCampaign.objects.exists()
    added = client.post("/admin/expansion/rolloutcampaign/add/", form)
    assert added.status_code == 302, added.content.decode()[:2000]
    campaign = RolloutCampaign.objects.get(name="round-admin")
    assert campaign.problems == 2 and campaign.samples.count() == 4
    page = client.post("/admin/expansion/rolloutcampaign/", {
        "action": "cancel_campaigns", "_selected_action": [campaign.pk], "index": "0",
    }, follow=True).content.decode()  # fmt: skip
    assert "ound-admin: cancelled, 4 samples cancelled" in page  # the admin capitalises it
    campaign.refresh_from_db()
    assert campaign.state == "cancelled"
    assert set(campaign.samples.values_list("status", flat=True)) == {"cancelled"}
    assert "cancelled 4" in client.get("/admin/expansion/rolloutcampaign/").content.decode()


def test_the_lists_cost_the_same_queries_for_one_campaign_or_many(
    api_as, reviewer_user, admin_user
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CampaignFactory, SampleFactory

    def queries(api, path: str) -> tuple[int, list]:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(path)
        assert response.status_code == 200
        return len(captured), response.json()

    api, admin = api_as(reviewer_user), api_as(admin_user)
    first = CampaignFactory()
    SampleFactory(campaign=first, verdict="incorrect")
    SampleFactory(
        campaign=first, problem=ProblemFactory(reference_answer=""), verdict="no_reference"
    )
    queries(api, "/api/rollout-campaigns/")  # what a first request of a session reads
    queries(admin, "/api/solve-prompts/")
    one, listed = queries(api, "/api/rollout-campaigns/")
    prompts_one, _ = queries(admin, "/api/solve-prompts/")
    for _ in range(4):
        SampleFactory(campaign=CampaignFactory())
    many, listed = queries(api, "/api/rollout-campaigns/")
    prompts_many, prompts = queries(admin, "/api/solve-prompts/")
    assert many == one and prompts_many == prompts_one
    rows = listed["results"] if isinstance(listed, dict) else listed
    summary = next(row["summary"] for row in rows if row["id"] == first.pk)
    assert summary["samples"] == 2 and summary["without_reference"] == 1
    assert summary["by_verdict"] == {"incorrect": 1, "no_reference": 1}
    prompt_rows = prompts["results"] if isinstance(prompts, dict) else prompts
    assert all(row["used"] for row in prompt_rows if row["id"] == first.prompt_id)
