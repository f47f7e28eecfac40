"""Agreement between the judge and people, and between people: kappa, confusion, drill-down."""

import pytest

from curation.analytics.agreement import agreement_figures
from curation.judging.prompts import judge_prompt_active
from curation.models import JudgeJob, StepRating, TraceStep
from curation.ratings.steps import trace_steps_split
from expansion.models import LLMEndpoint
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rated(reviewer_user):
    trace = TraceFactory(thought="One.\n\nTwo.\n\nThree.\n\nFour.")
    other = TraceFactory(thought="Alone.\n\nStill alone.")
    trace_steps_split(trace_id=trace.pk)
    trace_steps_split(trace_id=other.pk)
    steps = list(TraceStep.objects.filter(trace=trace).order_by("number"))
    second = UserFactory(username="second", role="reviewer")
    for step, a, b in zip(steps, [1, 1, -1, 0], [1, 1, -1, 1], strict=True):
        StepRating.objects.create(step=step, rater=reviewer_user, correctness=a,
                                  faithfulness="faithful")  # fmt: skip
        StepRating.objects.create(step=step, rater=second, correctness=b)
    endpoint = LLMEndpoint.objects.create(name="j", base_url="http://127.0.0.1:9/v1", model="m")
    JudgeJob.objects.create(
        trace=trace, prompt=judge_prompt_active(), endpoint=endpoint, params={},
        step_ids=[s.pk for s in steps], thought_hash="", idempotency_key="k", status="succeeded",
        ratings=[{"step": n, "correctness": c, "faithfulness": "faithful", "reason": ""}
                 for n, c in enumerate([1, -1, -1, 0], start=1)],
    )  # fmt: skip
    return trace, other


def test_kappa_and_confusion_per_question(rated):
    trace, _ = rated
    figures = agreement_figures()
    people = figures["humans"]["correctness"]
    assert people.steps == 4 and people.kappa == 0.556  # (0.75 - 7/16) / (1 - 7/16)
    judge = figures["judges"][("step-judge v1", "m")]["correctness"]
    assert judge.steps == 8 and judge.kappa == 0.455  # both people against the judge
    cells = {row["category"]: {c["category"]: c["count"] for c in row["cells"]}
             for row in judge.confusion()}  # fmt: skip
    assert cells["1"] == {"-1": 2, "0": 1, "1": 2} and cells["-1"] == {"-1": 2, "0": 0, "1": 0}
    faithful = figures["judges"][("step-judge v1", "m")]["faithfulness"]
    assert faithful.steps == 4 and faithful.kappa == 1.0  # one rater tagged, all faithful
    assert figures["humans"]["faithfulness"].steps == 0
    assert judge.traces("1", "-1") == [trace.pk]


def test_the_page_shows_each_figure_and_the_traces_behind_it(client_as, reviewer_user, rated):
    trace, other = rated
    client = client_as(reviewer_user)
    page = client.get("/analytics/agreement/").content.decode()
    assert "Judge step-judge v1 on m vs people" in page and "κ = 0.455" in page
    assert "κ = 0.556" in page and "over <a" in page
    drill = client.get("/analytics/agreement/", {"group": "step-judge v1|m",
                                                 "question": "correctness", "a": "1",
                                                 "b": "-1"}).content.decode()  # fmt: skip
    assert f'href="/review/{trace.pk}/?mode=steps"' in drill
    assert f"/review/{other.pk}/" not in drill
    missing = client.get("/analytics/agreement/", {"group": "nope", "question": "x"})
    assert "No such figure" in missing.content.decode()
