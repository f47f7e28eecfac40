"""The analytics figures on a small corpus whose every value is known."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from annotator.models import Problem
from annotator.roles import Role
from curation import services
from curation.analytics import metrics
from curation.analytics.profiles import marker_count_all, profile_trace, profiles_fill
from curation.models import Export, Marker, MarkerCount, TraceProfile
from expansion.prompts import prompt_active, prompt_version_create
from tests.factories import AnnotationFactory, EndpointFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(settings):
    """Three succeeded traces and a failed one, two endpoints, two prompt versions, reviews."""
    settings.REVIEW_APPROVALS_REQUIRED = 2
    p1 = prompt_active()
    p2 = prompt_version_create(system="Shorter.", invariants="Keep every step.")
    e1 = EndpointFactory(name="one", model="model-a")
    e2 = EndpointFactory(name="two", model="model-b")
    alice = UserFactory(username="alice", role=Role.ANNOTATOR)
    now = timezone.now()

    def annotation(seconds):
        return AnnotationFactory(annotator=alice, status="submitted", submitted_at=now,
                                 time_spent_seconds=seconds)  # fmt: skip

    t1 = TraceFactory(annotation=annotation(300), prompt=p1, endpoint=e1, finished_at=now,
                      thought="Wait, so x is 2.\nBut wait.\nTherefore x=2", solution="\\boxed{2}",
                      completion_tokens=1000, prompt_tokens=200, cost=Decimal("0.10"))  # fmt: skip
    t2 = TraceFactory(annotation=annotation(500), prompt=p1, endpoint=e1, finished_at=now,
                      thought="Let me compute 2+2.\nSo it is 4.", completion_tokens=500,
                      prompt_tokens=100, cost=Decimal("0.05"))  # fmt: skip
    t3 = TraceFactory(annotation=annotation(100), prompt=p2, endpoint=e2, finished_at=now,
                      thought="Alternatively, consider x.\nHmm.\n\nThus 4.",
                      completion_tokens=2000, prompt_tokens=300, cost=Decimal("0.40"),
                      flag_answer_mismatch=True,
                      checks={"matches_reference": False, "coverage_mean": 0.5})  # fmt: skip
    t4 = TraceFactory(annotation=t3.annotation, prompt=p2, endpoint=e2, status="failed",
                      thought="", completion_tokens=None, prompt_tokens=None,
                      cost=Decimal("0.01"), finished_at=now)  # fmt: skip
    for trace in (t1, t2, t3, t4):
        profile_trace(trace_id=trace.pk)
    r1 = UserFactory(username="rev1", role=Role.REVIEWER)
    r2 = UserFactory(username="rev2", role=Role.REVIEWER)
    decide = services.review_decide
    decide(trace_id=t1.pk, reviewer=r1, decision="approve")
    decide(trace_id=t1.pk, reviewer=r2, decision="approve")
    decide(trace_id=t2.pk, reviewer=r1, decision="reject", reason="lost_step")
    decide(trace_id=t3.pk, reviewer=r1, decision="approve")
    decide(trace_id=t3.pk, reviewer=r2, decision="reject", reason="wrong_answer")
    return {"traces": (t1, t2, t3, t4), "prompts": (p1, p2), "endpoints": (e1, e2),
            "alice": alice, "reviewers": (r1, r2)}  # fmt: skip


def rates(table: dict) -> dict:
    """marker phrase -> [(per 1k rounded, share rounded) per column]"""
    return {
        row["marker"].phrase: [
            (round(c["per_1k"], 3) if c["per_1k"] is not None else None,
             round(c["share"], 3) if c["share"] is not None else None)
            for c in row["cells"]
        ]
        for row in table["rows"]
    }  # fmt: skip


def test_a_succeeded_trace_is_profiled_with_its_lines_and_markers(corpus):
    t1, _, t3, t4 = corpus["traces"]
    profile = TraceProfile.objects.get(trace=t1)
    assert (profile.tokens, profile.lines, profile.answer_match) == (1000, 4, True)
    counts = dict(MarkerCount.objects.filter(trace=t1).values_list("marker__phrase", "count"))
    assert counts == {"Wait": 2, "So": 1, "But": 1, "Therefore": 1}
    assert TraceProfile.objects.get(trace=t3).coverage == 0.5
    assert not TraceProfile.objects.filter(trace=t4).exists()  # failed: nothing to profile


def test_the_funnel_counts_each_stage_by_window(corpus):
    old = Problem.objects.create(source="old", external_id="1", statement="Old.")
    Problem.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=30))
    Export.objects.create(format="messages", status="succeeded", counts={"train": 3, "test": 1},
                          records=4, finished_at=timezone.now())  # fmt: skip
    stages = {s["key"]: s["counts"] for s in metrics.funnel()["stages"]}
    assert stages["problems"] == [3, 3, 4]  # today, this week, in total
    assert stages["annotated"] == stages["submitted"] == [3, 3, 3]
    assert stages["expanded"] == [3, 3, 3]
    assert stages["awaiting"] == [0, 0, 0]
    assert stages["approved"] == [1, 1, 1]
    assert stages["rejected"] == [2, 2, 2]
    assert stages["exported"] == [4, 4, 4]


def test_costs_per_endpoint_prompt_and_approved_trace(corpus):
    figures = metrics.costs()
    one, two = figures["endpoints"]
    assert (one["endpoint__model"], one["traces"], one["succeeded"]) == ("model-a", 2, 2)
    assert (one["prompt_tokens"], one["completion_tokens"]) == (300, 1500)
    assert one["cost"] == Decimal("0.15") and one["cost_per_approved"] == Decimal("0.15")
    assert (two["traces"], two["succeeded"], two["cost"]) == (2, 1, Decimal("0.41"))
    assert two["approved"] == 0 and two["cost_per_approved"] is None
    assert figures["total"]["cost"] == Decimal("0.56") and figures["total"]["approved"] == 1
    assert [row["traces"] for row in figures["prompts"]] == [2, 2]


def test_histograms_of_tokens_and_lines(corpus):
    tokens = metrics.histogram("tokens", {}, bins=4)
    # 500..2000 over 4 bins: width 500, bins [500, 1000), [1000, 1500), [1500, 2000), [2000, 2500)
    assert tokens["width"] == 500
    assert [(b["low"], b["count"]) for b in tokens["bars"]] == [
        (500, 1), (1000, 1), (1500, 0), (2000, 1)]  # fmt: skip
    lines = metrics.histogram("lines", {"prompt_id": corpus["prompts"][0].pk}, bins=12)
    assert [(b["low"], b["count"]) for b in lines["bars"]] == [(3, 1), (4, 1)]


def test_marker_frequencies_per_thousand_tokens_overall_and_per_prompt(corpus):
    overall = rates(metrics.marker_rates({}))
    # 3,500 tokens in all: "Wait" twice (t1), "So" twice (t1, t2)
    assert overall["Wait"] == [(round(2000 / 3500, 3), round(1 / 3, 3))]
    assert overall["So"] == [(round(2000 / 3500, 3), round(2 / 3, 3))]
    assert overall["Let me check"] == [(0.0, 0.0)]
    per_prompt = metrics.marker_rates({}, "prompt")
    assert list(per_prompt["traces"].values()) == [2, 1]
    by_prompt = rates(per_prompt)
    assert by_prompt["Wait"] == [(round(2000 / 1500, 3), 0.5), (0.0, 0.0)]
    assert by_prompt["Thus"] == [(0.0, 0.0), (0.5, 1.0)]
    by_model = rates(metrics.marker_rates({}, "model"))
    assert by_model["Alternatively"] == [(0.0, 0.0), (0.5, 1.0)]


def test_a_marker_added_later_is_counted_over_every_trace(corpus):
    marker = Marker.objects.create(phrase="x is")
    assert marker_count_all(marker_id=marker.pk) == 1
    marker.refresh_from_db()
    assert marker.counted_at is not None
    assert rates(metrics.marker_rates({}))["x is"] == [(round(1000 / 3500, 3), round(1 / 3, 3))]


def test_traces_expanded_before_the_analytics_are_profiled_by_the_fill(corpus):
    TraceProfile.objects.all().delete()
    MarkerCount.objects.all().delete()
    assert profiles_fill() == 3
    assert TraceProfile.objects.count() == 3 and MarkerCount.objects.count() == 10


def test_two_prompt_versions_side_by_side(corpus):
    p1, p2 = corpus["prompts"]
    a, b = metrics.side({"prompt_id": p1.pk}), metrics.side({"prompt_id": p2.pk})
    assert (a["traces"], a["approved"], a["decided"], a["approval_rate"]) == (2, 1, 2, 0.5)
    assert (a["matched"], a["profiled"], a["match_rate"]) == (2, 2, 1.0)
    assert (a["tokens"], a["lines"], a["coverage"]) == (750, 3.5, 1.0)
    assert a["cost_per_approved"] == Decimal("0.15")
    assert (b["traces"], b["succeeded"], b["decided"], b["approval_rate"]) == (2, 1, 1, 0.0)
    assert (b["match_rate"], b["coverage"], b["cost_per_approved"]) == (0.0, 0.5, None)
    assert rates(b["markers"])["Hmm"] == [(0.5, 1.0)]


def test_people_figures(corpus):
    (alice,) = metrics.annotators()
    assert (alice["name"], alice["submitted"], alice["seconds"]) == ("alice", 3, 300)
    assert (alice["approved"], alice["rejected"], alice["approval_rate"]) == (1, 2, 1 / 3)
    assert (alice["returned"], alice["return_rate"]) == (0, 0.0)
    rev1, rev2 = metrics.reviewers()
    assert (rev1["name"], rev1["decisions"], rev1["hours"], rev1["per_hour"]) == (
        "rev1", 3, 1, 3.0)  # fmt: skip
    # Two traces had two reviewers: they agreed on one (t1) and not on the other (t3).
    assert (rev1["pairs"], rev1["agreed"], rev1["agreement"]) == (2, 1, 0.5)
    assert (rev2["decisions"], rev2["pairs"], rev2["agreed"]) == (2, 2, 1)


def test_a_returned_annotation_counts_in_the_return_rate(corpus):
    reviewer = corpus["reviewers"][0]
    t = TraceFactory(annotation=AnnotationFactory(annotator=corpus["alice"], status="submitted",
                                                  submitted_at=timezone.now()))  # fmt: skip
    services.review_decide(trace_id=t.pk, reviewer=reviewer, decision="return", comment="Why?")
    (alice,) = metrics.annotators()
    assert (alice["returned"], alice["submitted"], alice["return_rate"]) == (1, 4, 0.25)


# -- pages -----------------------------------------------------------------------------------


def test_the_dashboard_shows_the_figures_with_links_and_freshness(corpus, client_as):
    page = client_as(corpus["reviewers"][0]).get(reverse("analytics"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "figures older than 60 s are recomputed in the background" in html
    assert f'href="{reverse("analytics-traces")}?review=approved&amp;decided_since=' in html
    assert "<svg" in html and "As a table" in html
    assert "$0.1500" in html  # cost per approved trace of model-a
    assert 'id="marker-form"' not in html and "Recompute now" not in html  # admins only


def test_the_dashboard_narrowed_to_one_prompt_version(corpus, client_as):
    p1, p2 = corpus["prompts"]
    page = client_as(corpus["reviewers"][0]).get(
        reverse("analytics"), {"scope": f"prompt:{p2.pk}", "group": "prompt"}
    )
    assert page.status_code == 200
    assert page.context["tokens"]["total"] == 1
    assert list(page.context["markers_by_group"]["columns"]) == [p2.pk]
    assert f"?prompt={p2.pk}&amp;has=Hmm" in page.content.decode()


def test_the_dashboard_is_cached_and_says_when_it_was_computed(corpus, client_as, admin_user):
    client = client_as(admin_user)
    first = client.get(reverse("analytics")).context["computed_at"]
    TraceFactory()
    assert client.get(reverse("analytics")).context["computed_at"] == first
    fresh = client.get(reverse("analytics") + "?fresh=1")
    assert fresh.context["computed_at"] > first
    assert fresh.context["funnel"]["stages"][3]["counts"] == [3, 3, 4]
    assert fresh.context["missing"] == 1  # made outside the engine: nothing profiled it
    assert "1 succeeded trace has no profile yet" in fresh.content.decode()


def test_old_figures_are_shown_at_once_while_a_worker_computes_new_ones(
    corpus, client_as, settings, monkeypatch
):
    from curation.analytics import tasks

    sent = []
    monkeypatch.setattr(tasks.refresh_figures, "delay", lambda *args: sent.append(args))
    settings.ANALYTICS_CACHE_SECONDS = 0  # every figure is old at once
    client = client_as(corpus["reviewers"][0])
    first = client.get(reverse("analytics")).context["computed_at"]
    TraceFactory(finished_at=timezone.now())
    for _ in range(2):
        page = client.get(reverse("analytics"))
        assert page.context["computed_at"] == first and page.context["refreshing"]
    # one refresh of each entry at a time: choices, the overview, the profile of all traces
    assert sent == [("choices",), ("overview",), ("profile", "prompt", "")]
    assert "as they are now: reload in a moment" in page.content.decode()

    for args in sent:
        tasks.refresh_figures(*args)  # what the worker runs
    page = client.get(reverse("analytics"))
    assert page.context["computed_at"] > first
    assert page.context["funnel"]["stages"][3]["counts"][0] == 4


def test_annotators_cannot_see_analytics_and_reviewers_cannot_add_markers(corpus, client_as):
    annotator = client_as(corpus["alice"])
    for name in ("analytics", "analytics-compare", "analytics-traces"):
        assert annotator.get(reverse(name)).status_code == 403
    reviewer = client_as(corpus["reviewers"][0])
    assert reviewer.post(reverse("analytics-marker-add"), {"phrase": "Aha"}).status_code == 403
    assert reviewer.post(reverse("analytics-refresh")).status_code == 403
    assert not Marker.objects.filter(phrase="Aha").exists()


def test_an_admin_adds_a_marker_and_a_duplicate_is_refused(corpus, client_as, admin_user):
    admin = client_as(admin_user)
    response = admin.post(reverse("analytics-marker-add"), {"phrase": "  Aha  "}, follow=True)
    assert "“Aha” is being counted" in response.content.decode()
    assert Marker.objects.get(phrase="Aha").counted_at is None
    response = admin.post(reverse("analytics-marker-add"), {"phrase": "wait"}, follow=True)
    assert "“wait” is already counted" in response.content.decode()


def test_the_comparison_page(corpus, client_as):
    p1, p2 = corpus["prompts"]
    page = client_as(corpus["reviewers"][0]).get(
        reverse("analytics-compare"), {"a": f"prompt:{p1.pk}", "b": "model:model-b"}
    )
    assert page.status_code == 200
    a, b = page.context["sides"]
    assert (a["traces"], a["approval_rate"]) == (2, 0.5)
    assert (b["traces"], b["match_rate"]) == (2, 0.0)
    html = page.content.decode()
    assert "50.0 %" in html and "1 of 2 decided" in html
    assert f"?prompt={p1.pk}&amp;review=approved" in html


def test_the_comparison_names_a_bad_choice(corpus, client_as):
    page = client_as(corpus["reviewers"][0]).get(reverse("analytics-compare"), {"a": "oops"})
    html = page.content.decode()
    assert page.status_code == 200 and "No prompt version or model “oops” has traces." in html
    assert page.context["picked"][0] == f"prompt:{corpus['prompts'][0].pk}"  # the default


def test_drill_down_by_marker_absence_and_checks(corpus, client_as):
    t1, t2, t3, _ = corpus["traces"]
    client = client_as(corpus["reviewers"][0])

    def listed(**params):
        page = client.get(reverse("analytics-traces"), params)
        assert page.status_code == 200, page.content
        return {trace.pk for trace in page.context["page"]}

    assert listed(lacks="wait") == {t2.pk, t3.pk}
    assert listed(has="Wait") == {t1.pk}
    assert listed(flag="answer_mismatch") == {t3.pk}
    assert listed(clear="answer_mismatch") == {t1.pk, t2.pk}
    assert listed(review="approved") == {t1.pk}
    assert listed(tokens_min=1000, tokens_max=2500) == {t1.pk, t3.pk}
    assert listed(model="model-a", lacks="So") == set()
    assert listed(reviewer=corpus["reviewers"][1].pk) == {t1.pk, t3.pk}


def test_drill_down_refuses_an_unknown_marker_by_name(corpus, client_as):
    page = client_as(corpus["reviewers"][0]).get(reverse("analytics-traces"), {"has": "Eureka"})
    assert page.status_code == 400
    assert "“Eureka” is not a counted marker" in page.content.decode()


def _count_links(html: str) -> list[tuple[str, int]]:
    """(href, number) of every link to the trace list whose text is a count."""
    found = re.findall(r'<a href="(/analytics/traces/\?[^"]*)"[^>]*>(\d+)(?: traces?)?</a>', html)
    return [(unescape(href), int(number)) for href, number in found]


@pytest.mark.parametrize("page", ["dashboard", "compare"])
def test_every_count_links_to_a_list_of_as_many_traces(corpus, client_as, page):
    client = client_as(corpus["reviewers"][0])
    corpus_extra_returned(corpus)  # a returned annotation and a trace with no profile
    p1, _ = corpus["prompts"]
    url = reverse("analytics") if page == "dashboard" else reverse("analytics-compare")
    params = {} if page == "dashboard" else {"a": f"prompt:{p1.pk}", "b": "model:model-b"}
    html = client.get(url, params).content.decode()
    links = _count_links(html)
    assert len(links) >= (30 if page == "dashboard" else 8)
    for href, number in links:
        listed = client.get(href).context["page"].paginator.count
        assert listed == number, href


def corpus_extra_returned(corpus):
    t = TraceFactory(annotation=AnnotationFactory(annotator=corpus["alice"], status="submitted",
                                                  submitted_at=timezone.now()),
                     prompt=corpus["prompts"][0], endpoint=corpus["endpoints"][0])  # fmt: skip
    services.review_decide(trace_id=t.pk, reviewer=corpus["reviewers"][0], decision="return",
                           comment="Why?")  # fmt: skip


def test_the_funnel_windows_start_at_local_midnight_and_on_monday(db, settings):
    settings.TIME_ZONE = "Europe/Paris"
    now = datetime(2026, 11, 18, 12, 0, tzinfo=UTC)  # a Wednesday
    for when in ("2026-11-18 00:30", "2026-11-17 22:59", "2026-11-16 00:10", "2026-11-15 22:59"):
        problem = Problem.objects.create(source="w", external_id=when, statement="S.")
        moment = datetime.fromisoformat(when).replace(tzinfo=ZoneInfo("Europe/Paris"))
        Problem.objects.filter(pk=problem.pk).update(created_at=moment)
    stages = {s["key"]: s["counts"] for s in metrics.funnel(now=now)["stages"]}
    assert stages["problems"] == [1, 3, 4]  # today (Paris), since Monday 00:00 (Paris), all


def test_bad_scopes_and_dates_get_a_message_not_an_error(corpus, client_as, admin_user):
    client = client_as(corpus["reviewers"][0])
    page = client.get(reverse("analytics"), {"scope": "prompt:\u00b2"})
    assert page.status_code == 200 and "has traces" in page.content.decode()
    page = client.get(reverse("analytics"), {"scope": "model:nobody\x00"})
    assert page.status_code == 200 and page.context["scope"] == ""
    page = client.get(reverse("analytics-compare"), {"a": "prompt:\u2460", "b": "model:"})
    assert page.status_code == 200
    for day in ("0001-01-01", "9999-12-31"):
        assert client.get(reverse("analytics-traces"), {"until": day}).status_code == 400


def test_the_comparison_stays_whole_after_a_marker_is_added(corpus, client_as):
    p1, p2 = corpus["prompts"]
    client = client_as(corpus["reviewers"][0])
    client.get(reverse("analytics-compare"), {"a": f"prompt:{p1.pk}", "b": f"prompt:{p2.pk}"})
    Marker.objects.create(phrase="Aha")
    page = client.get(reverse("analytics-compare"), {"a": f"prompt:{p1.pk}", "b": "model:model-b"})
    assert page.status_code == 200
    assert [row["marker"].phrase for row in page.context["marker_rows"]][-1] == "Aha"


def test_a_reviewers_last_verdict_on_a_trace_is_the_one_compared(db, settings):
    settings.REVIEW_APPROVALS_REQUIRED = 3
    trace = TraceFactory()
    r1, r2 = (UserFactory(username=f"r{i}", role=Role.REVIEWER) for i in (1, 2))
    for reviewer, decision in ((r1, "approve"), (r2, "approve"), (r1, "reject")):
        services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision=decision,
                               reason="style" if decision == "reject" else "")  # fmt: skip
    one, two = metrics.reviewers()
    assert (one["decisions"], one["traces"], one["pairs"], one["agreed"]) == (2, 1, 1, 0)
    assert (two["pairs"], two["agreed"], two["agreement"]) == (1, 0, 0.0)


def test_only_admins_can_have_figures_recomputed_during_the_request(corpus, client_as, admin_user):
    reviewer = client_as(corpus["reviewers"][0])
    first = reviewer.get(reverse("analytics")).context["computed_at"]
    assert reviewer.get(reverse("analytics"), {"fresh": "1"}).context["computed_at"] == first
    admin = client_as(admin_user)
    assert admin.get(reverse("analytics"), {"fresh": "1"}).context["computed_at"] > first


def test_the_beat_keeps_the_default_dashboard_warm_and_a_broker_outage_is_survived(
    corpus, client_as, settings, monkeypatch
):
    from curation.analytics import tasks

    tasks.refresh_default_figures()  # what the beat schedule runs
    client = client_as(corpus["reviewers"][0])
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("analytics"))
    assert not page.context["refreshing"] and len(queries) <= 4  # session, user, roles, markers

    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.refresh_figures, "delay", broker_down)
    settings.ANALYTICS_CACHE_SECONDS = 0
    assert client.get(reverse("analytics")).status_code == 200
