"""The new check flags in every list that filters on flags: the review queue (count and
filter), the analytics drill-down, and the export's --checks-passed; and what the review
page shows of them."""

import json
import re
from io import StringIO

import pytest
from django.core.management import call_command

from curation import services
from expansion.checks import trace_checks
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db
NEW = ("repetition", "no_reflection", "format", "overthinking", "language_mix")


@pytest.fixture
def flagged():
    """One trace flagged by each new check, and a clean one."""
    made = {name: TraceFactory(thought=f"Hmm, trace {name}.", **{f"flag_{name}": True})
            for name in NEW}  # fmt: skip
    made["clean"] = TraceFactory(thought="Hmm, the clean trace.")
    return made


def ids_in(html: str, prefix: str) -> set[int]:
    return {int(pk) for pk in re.findall(rf'href="{prefix}(\d+)/"', html)}


def test_the_queue_counts_and_filters_each_new_flag(client_as, reviewer_user, flagged):
    client = client_as(reviewer_user)
    page = client.get("/review/").content.decode()
    for name in NEW:
        label = name.replace("_", " ").capitalize()
        assert re.search(rf'value="{name}"[^>]*>\s*{label} <span class="tag">1</span>', page)
        listed = ids_in(client.get("/review/", {"checks": name}).content.decode(), "/review/")
        assert listed == {flagged[name].pk}
    # Each flagged row says which check flagged it.
    assert '<span class="tag bad">language mix</span>' in page


def test_the_queue_api_filters_each_new_flag(api_as, reviewer_user, flagged):
    api = api_as(reviewer_user)
    for name in NEW:
        found = api.get("/api/review-queue/", {"checks": name}).json()["results"]
        assert [row["id"] for row in found] == [flagged[name].pk]


def test_the_drill_down_filters_by_each_new_flag_and_its_passing(client_as, reviewer_user,
                                                                 flagged):  # fmt: skip
    client = client_as(reviewer_user)
    for name in NEW:
        page = client.get("/analytics/traces/", {"checks": name}).content.decode()
        assert ids_in(page, "/traces/") == {flagged[name].pk}
    passed = client.get("/analytics/traces/", {"clear": list(NEW)}).content.decode()
    assert ids_in(passed, "/traces/") == {flagged["clean"].pk}
    page = client.get("/analytics/traces/").content.decode()
    assert 'name="checks" value="overthinking"' in page


def test_export_checks_passed_leaves_out_every_newly_flagged_trace(tmp_path, reviewer_user,
                                                                   flagged):  # fmt: skip
    for trace in flagged.values():
        services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
    out = tmp_path / "out"
    call_command("export_dataset", "--output", str(out), "--format", "messages",
                 "--checks-passed", stdout=StringIO(), stderr=StringIO())  # fmt: skip
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and "the clean trace" in json.dumps(rows[0])
    call_command("export_dataset", "--output", str(tmp_path / "all"), "--format", "messages",
                 stdout=StringIO(), stderr=StringIO())  # fmt: skip
    assert len((tmp_path / "all" / "train.jsonl").read_text().splitlines()) == 6


def test_the_review_page_shows_where_a_trace_loops_and_its_language(client_as, reviewer_user):
    steps = [{"kind": "attempt", "text": "Factor the quadratic into linear factors", "notes": []}]
    loop = "So x must be four since the equation says so and nothing else changes it. " * 12
    thought = f"Hmm, factor the quadratic into linear factors.\n\nWait, {loop}"
    checks = trace_checks(
        thought=thought, solution=r"\boxed{4}", split_ok=True, finish_reason="stop",
        completion_tokens=1600, target_min=1500, reference_answer="4", annotator_answer="4",
        steps=steps,
        answers={"matches_reference": True, "matches_annotator": True, "answer_timed_out": []},
    )  # fmt: skip
    trace = TraceFactory(thought=thought, checks=checks, flag_repetition=True)
    page = client_as(reviewer_user).get(f"/review/{trace.pk}/").content.decode()
    (finding,) = re.findall(r'<li class="check-repetition">(.*?)</li>', page, re.S)
    assert "a stretch of words 11 times" in finding  # 20 tokens span a copy and a bit
    assert "So x must be four since the equation says so" in finding
    assert '<a href="#p-2">¶2</a>' in finding
    assert "Language: record en, thought en" in page
