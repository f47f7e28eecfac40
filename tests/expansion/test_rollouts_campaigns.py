"""Rollout campaigns end to end: created over filtered problems, sampled through the real
openai client from the simulated endpoint (which answers arithmetic right in some samples
and wrong in others), verified, counted per problem; paused, resumed, cancelled, rerun."""

import time

import pytest

from devtools.simulated_solve import solve_answer
from expansion.batches import flow
from expansion.jobs import engine
from expansion.jobs.lifecycle import job_claim
from expansion.models import LLMEndpoint, ProblemDifficulty, RolloutCampaign, RolloutSample
from expansion.rollouts import services
from expansion.rollouts.running import sample_answered, sample_call, sample_run
from expansion.tasks import requeue_stalled_rollout_samples, rollout_sample
from tests.factories import ProblemFactory, SolvePromptFactory

pytestmark = pytest.mark.django_db

SOURCE = "rollout-test"
ARITHMETIC = {"What is 12+7?": "19", "What is 9*8?": "72", "What is 30-4?": "26"}
N = 8


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch, settings):
    monkeypatch.setattr(engine, "BACKOFF_BASE", 0.01)
    settings.EXPANSION_MAX_ATTEMPTS = 3


@pytest.fixture
def problems(db):
    return [
        ProblemFactory(source=SOURCE, statement=statement, reference_answer=answer)
        for statement, answer in ARITHMETIC.items()
    ]


def create(endpoint, **kwargs):
    kwargs.setdefault("filters", {"source": SOURCE})
    kwargs.setdefault("samples_per_problem", N)
    return services.campaign_create(name=kwargs.pop("name", "round-1"), endpoint=endpoint,
                                    **kwargs)  # fmt: skip


def statuses(campaign) -> dict[str, int]:
    return services.campaign_summary(campaign)["by_status"]


def test_a_campaign_samples_every_problem_and_verifies_each_answer(
    problems, endpoint, simulator, tasks_inline, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        campaign = create(endpoint)
    assert campaign.problems == 3 and campaign.without_reference == 0
    samples = RolloutSample.objects.filter(campaign=campaign).select_related("problem")
    assert samples.count() == 3 * N
    assert simulator.stats()["requests"] == 3 * N  # one request per sample, sent on commit
    for sample in samples:
        assert sample.status == "succeeded", sample.error_message
        expected, right = solve_answer(sample.problem.statement, [sample.sample_index, None])
        assert sample.answer == str(expected)
        assert sample.verdict == ("correct" if right else "incorrect")
        assert sample.thought and "\\boxed" in sample.solution and not sample.flag_format
        assert sample.request["temperature"] == 0.7 and sample.request["top_p"] == 0.95
        assert sample.request["max_tokens"] == endpoint.max_tokens
        assert sample.cost is not None and sample.completion_tokens
    verdicts = set(samples.values_list("verdict", flat=True))
    assert verdicts == {"correct", "incorrect"}  # the simulated model is right only sometimes
    for problem in problems:
        difficulty = ProblemDifficulty.objects.get(problem=problem, campaign=campaign)
        correct = samples.filter(problem=problem, verdict="correct").count()
        assert (difficulty.samples, difficulty.verified, difficulty.correct) == (N, N, correct)
        assert difficulty.pass_rate == correct / N
    # A finished campaign run again queues nothing and asks the endpoint for nothing more.
    assert services.campaign_run(campaign_id=campaign.pk) == 0
    assert simulator.stats()["requests"] == 3 * N


def test_a_paused_campaign_runs_nothing_until_it_is_resumed(
    problems, endpoint, simulator, settings, tasks_inline, django_capture_on_commit_callbacks
):
    campaign = create(endpoint)  # its messages are not delivered yet (no commit here)
    services.campaign_pause(campaign_id=campaign.pk)
    for sample_id in campaign.samples.values_list("pk", flat=True):
        sample_run(sample_id=sample_id)  # a worker receives each message
    assert simulator.stats()["requests"] == 0
    assert statuses(campaign) == {"queued": 3 * N}  # given back, not run
    settings.EXPANSION_RESEND_AFTER_SECONDS = 0
    assert services.samples_resend() == 0  # the requeue leaves a paused campaign alone
    with pytest.raises(services.CampaignRefused, match="resume it first"):
        services.campaign_run(campaign_id=campaign.pk)

    assert services.campaign_resume(campaign_id=campaign.pk) == 3 * N
    assert statuses(campaign) == {"succeeded": 3 * N}
    assert simulator.stats()["requests"] == 3 * N
    assert services.campaign_run(campaign_id=campaign.pk) == 0


def test_a_cancelled_campaign_keeps_its_finished_samples_and_sends_nothing_more(
    problems, endpoint, simulator
):
    campaign = create(endpoint)
    first, second, *rest = campaign.samples.order_by("pk")
    sample_run(sample_id=first.pk)
    running = job_claim(RolloutSample, second.pk)  # a worker is on it
    assert services.campaign_cancel(campaign_id=campaign.pk) == 3 * N - 1
    # The running sample stops at its next write, before asking the endpoint.
    second.refresh_from_db()
    engine.job_run(running, sample_call(second), on_answer=lambda *a: sample_answered(second, *a))
    for sample in rest:
        sample_run(sample_id=sample.pk)
    assert simulator.stats()["requests"] == 1
    assert statuses(campaign) == {"succeeded": 1, "cancelled": 3 * N - 1}
    first.refresh_from_db()
    assert first.verdict in ("correct", "incorrect")
    with pytest.raises(services.CampaignRefused, match="cancelled"):
        services.campaign_resume(campaign_id=campaign.pk)
    with pytest.raises(services.CampaignRefused, match="create a new one"):
        services.campaign_run(campaign_id=campaign.pk)


def test_a_sample_whose_message_is_delivered_twice_calls_the_endpoint_once(
    problems, endpoint, simulator, tasks_inline
):
    campaign = create(endpoint, samples_per_problem=2)
    sample = campaign.samples.first()
    sample_run(sample_id=sample.pk)
    sample_run(sample_id=sample.pk)
    rollout_sample.delay(sample.pk)  # a redelivered task
    assert simulator.stats()["requests"] == 1
    difficulty = ProblemDifficulty.objects.get(problem=sample.problem, campaign=campaign)
    assert difficulty.samples == 1  # counted once


def test_stalled_samples_of_an_active_campaign_are_sent_again_once_each(
    problems, endpoint, simulator, settings, tasks_inline
):
    campaign = create(endpoint, samples_per_problem=1)  # messages lost: never delivered
    settings.EXPANSION_RESEND_AFTER_SECONDS = 0
    assert requeue_stalled_rollout_samples.delay().get() == 3
    assert statuses(campaign) == {"succeeded": 3}
    assert simulator.stats()["requests"] == 3
    assert services.samples_resend() == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"samples_per_problem": 0}, "between 1 and 256 (got 0)"),
        ({"samples_per_problem": 257}, "between 1 and 256 (got 257)"),
        ({"filters": {"source": "no-such-source"}}, "No problem matches the filters"),
        ({"filters": {"level": "hard"}}, "Invalid filters: level: Enter a whole number."),
        ({"filters": {"colour": "red"}}, "Unknown filter(s): colour"),
        ({"temperature": 3.0}, "Temperature must be between 0 and 2"),
        ({"name": " "}, "Give the campaign a name."),
    ],
)
def test_bad_campaigns_are_refused_with_a_reason(problems, endpoint, kwargs, message):
    with pytest.raises(services.CampaignRefused) as refused:
        create(endpoint, **kwargs)
    assert message in refused.value.message
    assert not RolloutCampaign.objects.exists() and not RolloutSample.objects.exists()


def test_an_inactive_endpoint_a_prompt_without_boxed_and_a_taken_name_are_refused(
    problems, endpoint
):
    unboxed = SolvePromptFactory(instructions="Think inside <think></think>.\n\n{problem}")
    with pytest.raises(services.CampaignRefused, match=r"Ask for the final answer in \\boxed"):
        create(endpoint, prompt=unboxed)
    create(endpoint, name="taken")
    with pytest.raises(services.CampaignRefused, match="exists already"):
        create(endpoint, name="taken")
    LLMEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    endpoint.refresh_from_db()
    with pytest.raises(services.CampaignRefused, match="'sim' is inactive"):
        create(endpoint, name="other")


def test_a_campaign_over_problems_without_reference_verifies_nothing_and_says_so(
    endpoint, simulator, tasks_inline, django_capture_on_commit_callbacks
):
    ProblemFactory(source="unchecked", statement="What is 3+4?", reference_answer="")
    ProblemFactory(source="unchecked", statement="What is 5*6?", reference_answer="")
    with django_capture_on_commit_callbacks(execute=True):
        campaign = create(endpoint, filters={"source": "unchecked"}, samples_per_problem=3)
    assert campaign.without_reference == 2
    summary = services.campaign_summary(campaign)
    assert summary["without_reference"] == 2
    assert summary["by_status"] == {"succeeded": 6}
    assert summary["by_verdict"] == {"no_reference": 6}
    for difficulty in ProblemDifficulty.objects.filter(campaign=campaign):
        assert (difficulty.samples, difficulty.verified, difficulty.pass_rate) == (3, 0, None)


def test_samples_of_a_batch_endpoint_go_out_in_a_batch_but_not_while_paused(problems, simulator):
    simulator.configure(batch_seconds=0.3)
    endpoint = LLMEndpoint.objects.create(
        name="sim-batch", base_url=simulator.base_url, model="simulated-journey",
        is_simulated=True, max_tokens=4000, timeout_seconds=5, use_batches=True,
    )  # fmt: skip
    campaign = create(endpoint, samples_per_problem=2)
    services.campaign_pause(campaign_id=campaign.pk)
    assert flow.batches_tick()["submitted"] == 0
    services.campaign_resume(campaign_id=campaign.pk)
    deadline = time.monotonic() + 20
    while campaign.samples.exclude(status="succeeded").exists() and time.monotonic() < deadline:
        flow.batches_tick()
        time.sleep(0.05)
    assert statuses(campaign) == {"succeeded": 6}
    assert simulator.stats()["requests"] == 0  # nothing streamed
    assert not campaign.samples.filter(verdict="pending").exists()
    assert sum(d.samples for d in ProblemDifficulty.objects.filter(campaign=campaign)) == 6
