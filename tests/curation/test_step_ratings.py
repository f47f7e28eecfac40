"""Reviewers rate each step: two questions, a note, versioned, kept apart per rater."""

import pytest
from django.contrib.auth.models import Group

from annotator.models import WorkspaceSettings
from curation.models import LostRecordStep, StepRating
from tests.factories import TraceFactory, UserFactory

pytestmark = pytest.mark.django_db

THOUGHT = "Try x = 3.\n\n3 + 3 = 6, not 8.\n\nWait, so x = 4."


@pytest.fixture
def trace():
    return TraceFactory(thought=THOUGHT)


def _put(api, trace, number, **body):
    body.setdefault("version", 0)
    return api.put(f"/api/traces/{trace.pk}/steps/{number}/rating/", body, format="json")


def test_the_steps_come_with_every_raters_rating(api_as, reviewer_user, admin_user, trace):
    assert _put(api_as(reviewer_user), trace, 2, correctness=-1, faithfulness="faithful",
                note="The record's own slip.").status_code == 200  # fmt: skip
    WorkspaceSettings.objects.update_or_create(pk=1, defaults={"raters_per_trace": 2})
    assert _put(api_as(admin_user), trace, 2, correctness=0).status_code == 200
    body = api_as(reviewer_user).get(f"/api/traces/{trace.pk}/steps/").json()
    assert body["unsplittable"] is False
    assert [s["text"] for s in body["steps"]] == [
        "Try x = 3.",
        "3 + 3 = 6, not 8.",
        "Wait, so x = 4.",
    ]
    assert body["steps"][1]["start"] == len("Try x = 3.\n\n")
    ratings = {r["rater_username"]: r for r in body["steps"][1]["ratings"]}
    assert ratings["rev"]["correctness"] == -1 and ratings["rev"]["faithfulness"] == "faithful"
    assert ratings["rev"]["note"] == "The record's own slip." and ratings["rev"]["version"] == 1
    assert ratings["boss"]["correctness"] == 0 and ratings["boss"]["faithfulness"] == ""
    assert body["steps"][0]["ratings"] == []


def test_a_save_based_on_a_stale_version_is_a_409_and_keeps_the_first(api_as, reviewer_user,
                                                                      trace):  # fmt: skip
    api = api_as(reviewer_user)
    assert _put(api, trace, 1, correctness=1).json()["version"] == 1
    assert _put(api, trace, 1, correctness=0, version=1).json()["version"] == 2
    stale = _put(api, trace, 1, correctness=-1, version=1)
    assert stale.status_code == 409
    assert "version 2 is stored" in stale.json()["detail"]
    assert stale.json()["current"]["correctness"] == 0
    again = _put(api, trace, 1, correctness=-1, version=0)  # a second "first" rating
    assert again.status_code == 409
    assert StepRating.objects.get().correctness == 0


def test_bad_values_say_what_is_wrong_and_store_nothing(api_as, reviewer_user, trace):
    api = api_as(reviewer_user)
    assert "correctness" in _put(api, trace, 1, correctness=2).json()
    assert "faithfulness" in _put(api, trace, 1, faithfulness="lost").json()
    assert "note" in _put(api, trace, 1, note="x" * 2001).json()
    missing = _put(api, trace, 9, correctness=1)
    assert missing.status_code == 404 and "no step 9" in missing.json()["detail"]
    nowhere = api.put("/api/traces/999999/steps/1/rating/", {"version": 0}, format="json")
    assert nowhere.status_code == 404
    assert not StepRating.objects.exists()


def test_nobody_rates_the_steps_of_their_own_annotation(api_as, trace):
    author = trace.annotation.annotator
    author.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    response = _put(api_as(author), trace, 1, correctness=1)
    assert response.status_code == 403 and "your own annotation" in response.json()["detail"]
    assert not StepRating.objects.exists()


def test_a_trace_takes_as_many_raters_as_the_workspace_asks(api_as, reviewer_user, admin_user,
                                                            trace):  # fmt: skip
    assert _put(api_as(reviewer_user), trace, 1, correctness=1).status_code == 200
    refused = _put(api_as(admin_user), trace, 1, correctness=1)
    assert refused.status_code == 403 and "already has its 1 rater" in refused.json()["detail"]
    assert _put(api_as(reviewer_user), trace, 2, correctness=1).status_code == 200  # still theirs
    WorkspaceSettings.objects.update_or_create(pk=1, defaults={"raters_per_trace": 2})
    assert _put(api_as(admin_user), trace, 1, correctness=-1).status_code == 200
    third = UserFactory(username="third", role="reviewer")
    assert _put(api_as(third), trace, 3, correctness=1).status_code == 403
    mine = StepRating.objects.get(step__number=1, rater=reviewer_user)
    assert mine.correctness == 1  # each rater's kept apart


def test_the_page_saves_a_rating_and_shows_it_on_reload(client_as, reviewer_user, trace):
    client = client_as(reviewer_user)
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    assert 'id="rating-3"' in page and "Stop at the first wrong step" in page
    saved = client.post(f"/review/{trace.pk}/steps/2/rate/",
                        {"correctness": "-1", "faithfulness": "early_fix", "note": "Fixed early",
                         "version": "0"}, HTTP_HX_REQUEST="true")  # fmt: skip
    assert saved.status_code == 200 and "Saved (version 1)" in saved.content.decode()
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    step = page[page.index('id="rating-2"') : page.index('id="rating-3"')]
    assert 'value="-1" checked' in step and 'value="early_fix" checked' in step
    assert "Fixed early</textarea>" in step and 'name="version" value="1"' in step


def test_each_steps_form_posts_to_that_steps_address(client_as, reviewer_user, trace):
    client = client_as(reviewer_user)
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    for number in (1, 2, 3):
        form = page[page.index(f'id="rating-{number}"') :].split("</form>")[0]
        url = f"/review/{trace.pk}/steps/{number}/rate/"
        assert f'action="{url}"' in form and f'hx-post="{url}"' in form
    url = f"/review/{trace.pk}/steps/3/rate/"
    client.post(url, {"correctness": "1", "version": "0"}, HTTP_HX_REQUEST="true")
    stale = client.post(url, {"correctness": "0", "version": "0"}, HTTP_HX_REQUEST="true")
    assert stale.status_code == 409 and f'hx-post="{url}"' in stale.content.decode()


def test_the_page_shows_a_stale_save_with_the_stored_rating(client_as, reviewer_user, trace):
    client = client_as(reviewer_user)
    url = f"/review/{trace.pk}/steps/1/rate/"
    client.post(url, {"correctness": "1", "version": "0"}, HTTP_HX_REQUEST="true")
    stale = client.post(url, {"correctness": "0", "version": "0"}, HTTP_HX_REQUEST="true")
    assert stale.status_code == 409 and stale["HX-Retarget"] == "#rating-1"
    assert 'value="1" checked' in stale.content.decode()
    assert "changed since you loaded it" in stale.content.decode()


def test_a_record_step_can_be_marked_lost(client_as, reviewer_user):
    record = {"steps": [{"kind": "attempt", "text": "a", "notes": []}], "final_answer": "4"}
    trace = TraceFactory(thought=THOUGHT, record=record)
    client = client_as(reviewer_user)
    assert client.post(f"/review/{trace.pk}/record/1/lost/").status_code == 302
    assert LostRecordStep.objects.get(trace=trace).record_step == 1
    assert client.post(f"/review/{trace.pk}/record/2/lost/").status_code == 404
    assert "take back" in client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    client.post(f"/review/{trace.pk}/record/1/lost/", {"lost": "0"})
    assert not LostRecordStep.objects.exists()


def test_the_schema_describes_the_steps_and_the_rating(api_as, admin_user):
    schema = api_as(admin_user).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    steps = next(
        v for k, v in paths.items() if k.startswith("/api/traces/{") and k.endswith("/steps/")
    )
    assert set(steps) == {"get"} and "/api/traces/{id}/steps/{n}/rating/" in paths
    rating = next(v for k, v in paths.items() if k.endswith("/rating/"))
    assert set(rating) == {"put"} and {"200", "409"} <= set(rating["put"]["responses"])
    components = schema["components"]["schemas"]
    assert {"correctness", "faithfulness", "note", "version"} <= set(
        components["RatingInput"]["properties"]
    )
    assert set(components["TraceStep"]["properties"]) == {"number", "start", "end", "text",
                                                          "ratings", "judge"}  # fmt: skip


def test_a_refused_rater_is_told_why_beside_the_step(client_as, reviewer_user, admin_user, trace):
    client_as(admin_user).post(f"/review/{trace.pk}/steps/1/rate/", {"correctness": "1",
                                                                     "version": "0"})  # fmt: skip
    refused = client_as(reviewer_user).post(f"/review/{trace.pk}/steps/1/rate/",
                                            {"correctness": "1", "version": "0"},
                                            HTTP_HX_REQUEST="true")  # fmt: skip
    assert refused.status_code == 403
    assert refused.content.decode() == "This trace already has its 1 rater; rate another one."


def test_the_rating_mode_shows_llm_text_and_notes_as_text(client_as, reviewer_user):
    from curation.judging.prompts import judge_prompt_active
    from curation.models import JudgeJob, TraceStep

    trace = TraceFactory(thought="Try <script>alert(1)</script> x.\n\nSo x = 4.")
    client = client_as(reviewer_user)
    client.get(f"/review/{trace.pk}/?mode=steps")  # splits the thought into its steps
    steps = list(TraceStep.objects.filter(trace=trace).order_by("number"))
    JudgeJob.objects.create(
        trace=trace, prompt=judge_prompt_active(), endpoint=trace.endpoint, params={},
        step_ids=[s.pk for s in steps], thought_hash="", idempotency_key="xss", status="succeeded",
        ratings=[{"step": 1, "correctness": -1, "faithfulness": "invented",
                  "reason": '<img src=x onerror="alert(2)">'},
                 {"step": 2, "correctness": 0, "faithfulness": "faithful", "reason": "ok"}],
    )  # fmt: skip
    note = '</textarea><script>alert(3)</script> & "quoted"'
    client.post(f"/review/{trace.pk}/steps/2/rate/", {"correctness": "1", "note": note,
                                                      "version": "0"})  # fmt: skip
    page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
    assert "<script>alert" not in page and "<img src=x" not in page
    assert (
        "Judge: <strong>-1</strong>, invented — &lt;img src=x onerror=&quot;alert(2)&quot;&gt;"
        in page
    )
    assert "Judge: <strong>0</strong>, faithful — ok" in page
    assert (
        "&lt;/textarea&gt;&lt;script&gt;alert(3)&lt;/script&gt; &amp; &quot;quoted&quot;</textarea>"
        in page
    )
    # A refused save's form escapes the stored note the same way.
    refused = client.post(f"/review/{trace.pk}/steps/2/rate/", {"correctness": "7",
                                                                "version": "1"})  # fmt: skip
    assert refused.status_code == 400 and "<script>alert" not in refused.content.decode()
    assert "&lt;/textarea&gt;&lt;script&gt;" in refused.content.decode()


def test_a_change_of_rating_reads_the_step_and_its_trace_once(api_as, reviewer_user, trace):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = api_as(reviewer_user)
    assert _put(api, trace, 1, correctness=1).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        answer = _put(api, trace, 1, correctness=0, version=1)
    assert answer.status_code == 200 and answer.json()["rater_username"] == "rev"
    sql = [q["sql"] for q in queries.captured_queries]
    assert sum('FROM "expansion_trace"' in q for q in sql) == 0  # joined to the step's query
    assert sum('FROM "curation_tracestep"' in q for q in sql) == 1
    assert not any('FROM "auth_user"' in q and "username" in q for q in sql[-2:])


def test_the_rating_mode_runs_as_many_queries_at_200_steps_as_at_3(client_as, reviewer_user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_as(reviewer_user)
    counts = []
    for size in (3, 200):
        trace = TraceFactory(thought="\n\n".join(f"Step {n}: x = {n}." for n in range(size)))
        client.get(f"/review/{trace.pk}/?mode=steps")  # the split, stored once
        for number in (1, 2):
            client.post(f"/review/{trace.pk}/steps/{number}/rate/", {"correctness": "1",
                                                                     "version": "0"})  # fmt: skip
        with CaptureQueriesContext(connection) as queries:
            page = client.get(f"/review/{trace.pk}/?mode=steps").content.decode()
        assert page.count('class="step-rating"') == size
        assert page.count('value="1" checked') == 2
        counts.append(len(queries.captured_queries))
    assert counts[0] == counts[1]
