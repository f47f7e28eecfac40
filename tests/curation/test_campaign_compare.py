"""Rounds side by side: two rollout campaigns compared on pass rate (overall, per subject and
level), tokens, markers and cost per correct sample, each figure linking to its samples."""

import re
from decimal import Decimal

import pytest

from tests.factories import CampaignFactory, EndpointFactory, ProblemFactory, SampleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rounds():
    """Round 1 solves 2 of 4 algebra samples and 1 of 2 geometry ones, with one unverified
    algebra sample; round 2 solves all 4 algebra samples of the same problems."""
    algebra = ProblemFactory(subject="Algebra", level=2, reference_answer="4")
    geometry = ProblemFactory(subject="Geometry", level=5, reference_answer="9")
    first = CampaignFactory(name="round one", endpoint=EndpointFactory(name="a", model="policy-a"))
    second = CampaignFactory(name="round two", endpoint=EndpointFactory(name="b", model="policy-b"))
    verdicts = [("correct", 1000), ("correct", 3000), ("incorrect", 5000), ("incorrect", 7000)]
    for index, (verdict, tokens) in enumerate(verdicts):
        SampleFactory(campaign=first, problem=algebra, sample_index=index, verdict=verdict,
                      completion_tokens=tokens, cost=Decimal("0.01"))  # fmt: skip
        SampleFactory(campaign=second, problem=algebra, sample_index=index, verdict="correct",
                      completion_tokens=2000, cost=Decimal("0.02"),
                      thought="Plain steps with no turn at all.")  # fmt: skip
    SampleFactory(campaign=first, problem=algebra, sample_index=4, verdict="unverified",
                  answer="four-ish", cost=Decimal("0.01"))  # fmt: skip
    SampleFactory(campaign=first, problem=geometry, sample_index=0, verdict="correct",
                  cost=Decimal("0.01"))  # fmt: skip
    SampleFactory(campaign=first, problem=geometry, sample_index=1, verdict="incorrect",
                  cost=Decimal("0.01"))  # fmt: skip
    return first, second


def _row(page: str, figure: str) -> str:
    return re.search(rf'<tr data-figure="{figure}">(.*?)</tr>', page, re.S).group(1)


def _cells(page: str, table: str, label: str) -> list[str]:
    body = page[page.index(f'id="{table}"') :].split("</table>")[0]
    row = re.search(rf'<th scope="row">{re.escape(label)}</th>(.*?)</tr>', body, re.S).group(1)
    return re.findall(r"<td>(.*?)</td>", row, re.S)


def test_two_rounds_side_by_side(client_as, reviewer_user, rounds):
    first, second = rounds
    page = (
        client_as(reviewer_user)
        .get(f"/analytics/campaigns/?a={first.pk}&b={second.pk}")
        .content.decode()
    )
    assert "round one" in page and "policy-a" in page and "policy-b" in page
    # 3 of 6 verified: the unverified sample is not counted as wrong.
    one, two = re.findall(r"<td>(.*?)</td>", _row(page, "pass-rate"), re.S)
    assert "50.0 %" in one and "3 of" in one and "1 unverified" in one
    assert "100.0 %" in two and "4 of" in two
    one, _ = re.findall(r"<td>(.*?)</td>", _row(page, "tokens"), re.S)
    # (1,000 + 3,000 + 1,200) / 3 and (5,000 + 7,000 + 1,200) / 3, geometry's at 1,200 each
    assert ">1,733.3</a> correct" in one and ">4,400.0</a> incorrect" in one
    one, two = re.findall(r"<td>(.*?)</td>", _row(page, "cost"), re.S)
    assert one.startswith("$0.0233") and two.startswith("$0.0200")  # 0.07 / 3, 0.08 / 4
    algebra = _cells(page, "by-subject", "Algebra")
    assert "50.0 %" in algebra[0] and "2 of 4" in algebra[0] and "100.0 %" in algebra[1]
    geometry = _cells(page, "by-subject", "Geometry")
    assert "50.0 %" in geometry[0] and geometry[1] == "—"  # round two had no geometry
    assert "50.0 %" in _cells(page, "by-level", "5")[0]
    wait = _cells(page, "campaign-markers", "Wait")
    assert "in 100.0 %" in wait[0] and "in 0.0 %" in wait[1]


def test_a_figure_links_to_the_samples_behind_it(client_as, reviewer_user, rounds):
    first, second = rounds
    client = client_as(reviewer_user)
    page = client.get(f"/analytics/campaigns/?a={first.pk}&b={second.pk}").content.decode()
    href = re.search(r'<a href="([^"]+)">50.0 %</a>', _cells(page, "by-subject", "Algebra")[0])
    listed = client.get(href.group(1).replace("&amp;", "&")).content.decode()
    assert "5 samples" in listed  # the algebra samples of round one, the unverified one too
    sample = first.samples.filter(problem__subject="Algebra").first()
    assert f'href="/problems/{sample.problem_id}/campaigns/{first.pk}/samples/"' in listed
    assert (
        client.get(f"/problems/{sample.problem_id}/campaigns/{first.pk}/samples/").status_code
        == 200
    )
    incorrect = re.search(r'<a href="([^"]+)">[\d,.]+</a> incorrect',
                          _row(page, "tokens")).group(1)  # fmt: skip
    listed = client.get(incorrect.replace("&amp;", "&")).content.decode()
    assert "3 samples" in listed and listed.count(">Incorrect</span>") == 3


def test_the_two_newest_campaigns_are_compared_by_default(client_as, reviewer_user, rounds):
    page = client_as(reviewer_user).get("/analytics/campaigns/").content.decode()
    assert 'data-figure="pass-rate"' in page
    assert re.search(r"A: round two.*B: round one", page, re.S)


def test_unknown_campaigns_and_bad_filters_are_said(client_as, reviewer_user, rounds):
    first, _ = rounds
    client = client_as(reviewer_user)
    page = client.get("/analytics/campaigns/?a=999999").content.decode()
    assert "No campaign with samples has the id “999999”" in page
    refused = client.get(f"/analytics/campaigns/{first.pk}/samples/?level=high")
    assert refused.status_code == 400
    assert "A level is a number or “none”" in refused.content.decode()
    assert client.get("/analytics/campaigns/999999/samples/").status_code == 404


def test_with_no_campaign_the_page_says_so(client_as, reviewer_user):
    page = client_as(reviewer_user).get("/analytics/campaigns/").content.decode()
    assert "No campaign has samples yet" in page


def test_a_filter_matching_no_sample_says_so(client_as, reviewer_user, rounds):
    first, _ = rounds
    page = (
        client_as(reviewer_user)
        .get(f"/analytics/campaigns/{first.pk}/samples/", {"status": "cancelled"})
        .content.decode()
    )
    assert "0 samples" in page and "No sample matches." in page


def test_the_trace_drill_down_says_when_no_trace_matches(client_as, reviewer_user):
    page = client_as(reviewer_user).get("/analytics/traces/", {"flag": "overthinking"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "0 traces" in body and "No trace matches." in body
