"""What the samples tell: pass rates on the problem pages, the samples page, answer disputes,
and Next problem leasing what the chosen campaign's model fails most first."""

import threading

import pytest
from django.db import close_old_connections, connection

from annotator import services
from annotator.admin import WorkspaceSettingsForm
from annotator.models import Annotation, WorkspaceSettings, _settings_cache
from annotator.roles import Role
from expansion.models import ProblemDifficulty
from tests.factories import (
    AnnotationFactory,
    CampaignFactory,
    DifficultyFactory,
    ProblemFactory,
    SampleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MAJORITY = "seventeen-halves"


def _lease_by(campaign, skip_solved=None):
    WorkspaceSettings.objects.update_or_create(
        pk=1, defaults={"lease_campaign": campaign.pk, "lease_skip_solved": skip_solved}
    )


def _external_ids(response) -> list[str]:
    return [problem.external_id for problem in response.context["page"]]


def test_annotators_never_see_samples_or_pass_rates(client_as, annotator_user):
    problem = ProblemFactory()
    difficulty = DifficultyFactory(
        problem=problem, correct=3, majority_answer=MAJORITY, reference_disputed=True
    )
    SampleFactory(campaign=difficulty.campaign, problem=problem, answer=MAJORITY)
    _lease_by(difficulty.campaign)
    client = client_as(annotator_user)
    campaign = difficulty.campaign_id
    for path in (
        "/problems/",
        f"/problems/{problem.pk}/",
        f"/problems/{problem.pk}/campaigns/{campaign}/samples/",
    ):
        assert client.get(path).status_code == 403, path
    assert (
        client.post(f"/problems/{problem.pk}/campaigns/{campaign}/dispute-checked/").status_code
        == 403
    )

    # Leased by difficulty, the problem's editor still says nothing of the samples.
    response = client.post("/annotations/next/", follow=True)
    assert response.status_code == 200
    assert response.context["annotation"].problem == problem
    body = response.content.decode()
    assert problem.statement.split("$")[0] in body
    for hint in ("3 of 16", "pass rate", "Pass rate", MAJORITY, "disputed", "sample"):
        assert hint not in body, hint


def test_the_list_shows_k_of_n_of_the_latest_campaign_and_the_picker_chooses_another(
    client_as, reviewer_user
):
    problem = ProblemFactory()
    older = DifficultyFactory(problem=problem, correct=12).campaign
    DifficultyFactory(problem=problem, correct=3)
    CampaignFactory()  # no figures yet: not offered
    client = client_as(reviewer_user)

    response = client.get("/problems/")
    body = response.content.decode()
    assert "3 of 16 (19%)" in body
    assert len(response.context["campaigns"]) == 2

    body = client.get("/problems/", {"campaign": older.pk}).content.decode()
    assert "12 of 16 (75%)" in body
    assert "3 of 16" not in body


def test_sort_by_pass_rate_and_at_most_k_of_n(client_as, reviewer_user):
    campaign = CampaignFactory()
    easy, hard, middle = ProblemFactory(), ProblemFactory(), ProblemFactory()
    unsampled = ProblemFactory()
    DifficultyFactory(problem=easy, campaign=campaign, correct=15)
    DifficultyFactory(problem=hard, campaign=campaign, correct=1)
    DifficultyFactory(problem=middle, campaign=campaign, correct=8)
    client = client_as(reviewer_user)
    ids = [p.external_id for p in (hard, middle, easy)]

    ascending = _external_ids(client.get("/problems/", {"sort": "pass_asc"}))
    assert ascending == [*ids, unsampled.external_id]
    descending = _external_ids(client.get("/problems/", {"sort": "pass_desc"}))
    assert descending == [*reversed(ids), unsampled.external_id]

    at_most = client.get("/problems/", {"at_most": 8, "sort": "pass_asc"})
    assert _external_ids(at_most) == ids[:2]
    assert _external_ids(client.get("/problems/", {"at_most": 0})) == []
    # A bad value is ignored, as the other filters' are.
    assert len(_external_ids(client.get("/problems/", {"at_most": "many"}))) == 4


def test_dispute_filter_and_an_admins_check(client_as, reviewer_user, admin_user):
    problem = ProblemFactory(reference_answer="1/2")
    difficulty = DifficultyFactory(
        problem=problem, correct=2, majority_answer=MAJORITY, majority_count=12,
        reference_disputed=True,
    )  # fmt: skip
    DifficultyFactory(problem=ProblemFactory(), campaign=difficulty.campaign)
    client = client_as(reviewer_user)
    assert _external_ids(client.get("/problems/", {"dispute": "disputed"})) == [problem.external_id]
    assert _external_ids(client.get("/problems/", {"dispute": "unchecked"})) == [
        problem.external_id
    ]

    page = client.get(f"/problems/{problem.pk}/").content.decode()
    assert "not checked yet" in page
    assert "Mark the dispute checked" not in page  # reviewers read, admins check
    check = f"/problems/{problem.pk}/campaigns/{difficulty.campaign_id}/dispute-checked/"
    assert client.post(check).status_code == 403

    admin = client_as(admin_user)
    assert "Mark the dispute checked" in admin.get(f"/problems/{problem.pk}/").content.decode()
    response = admin.post(check)
    assert response.status_code == 302
    assert response["Location"] == f"/problems/{problem.pk}/"
    difficulty.refresh_from_db()
    assert difficulty.dispute_checked_by == admin_user
    assert difficulty.dispute_checked_at is not None

    assert _external_ids(admin.get("/problems/", {"dispute": "unchecked"})) == []
    assert _external_ids(admin.get("/problems/", {"dispute": "disputed"})) == [problem.external_id]
    assert "reference disputed, checked" in admin.get("/problems/").content.decode()
    assert (
        f"checked by {admin_user.username}"
        in admin.get(f"/problems/{problem.pk}/").content.decode()
    )


def test_checking_needs_a_dispute_and_csrf(client, admin_user):
    difficulty = DifficultyFactory(reference_disputed=False)
    path = f"/problems/{difficulty.problem_id}/campaigns/{difficulty.campaign_id}/dispute-checked/"
    client.force_login(admin_user)
    assert client.post(path).status_code == 409
    other = CampaignFactory()
    assert (
        client.post(
            f"/problems/{difficulty.problem_id}/campaigns/{other.pk}/dispute-checked/"
        ).status_code
        == 404
    )

    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    difficulty.reference_disputed = True
    difficulty.save()
    assert strict.post(path).status_code == 403
    difficulty.refresh_from_db()
    assert difficulty.dispute_checked_at is None


def test_problem_page_figures_per_campaign_with_a_link_to_the_samples(client_as, reviewer_user):
    problem = ProblemFactory(reference_answer="4")
    difficulty = DifficultyFactory(
        problem=problem, samples=16, verified=15, correct=5, mean_tokens_correct=1234.4,
        mean_tokens_incorrect=2871.6, majority_answer="5", majority_count=10,
    )  # fmt: skip
    body = client_as(reviewer_user).get(f"/problems/{problem.pk}/").content.decode()
    assert difficulty.campaign.name in body
    assert "5 of 15 (33%)" in body
    assert "16 finished samples" in body
    assert "1234" in body and "2872" in body
    assert "<code>5</code> (10 of 15)" in body
    assert "not disputed" in body
    assert f"/problems/{problem.pk}/campaigns/{difficulty.campaign_id}/samples/" in body


def test_samples_page_shows_each_verdict_escaped_and_paginated(client_as, reviewer_user):
    problem = ProblemFactory(reference_answer="4")
    campaign = CampaignFactory()
    SampleFactory(
        campaign=campaign, problem=problem, sample_index=0, verdict="incorrect", answer="5",
        completion_tokens=4321, flag_truncated=True, flag_repetition=True,
        thought='Hmm <script>alert("x")</script>.\n\nWait, <img src=x onerror="alert(1)"> **bold**',
        solution="So \\boxed{5} <script>evil()</script>",
    )  # fmt: skip
    for index in range(1, 12):
        SampleFactory(campaign=campaign, problem=problem, sample_index=index)
    SampleFactory(problem=problem, sample_index=0, answer="other-campaign")
    client = client_as(reviewer_user)
    path = f"/problems/{problem.pk}/campaigns/{campaign.pk}/samples/"

    response = client.get(path)
    body = response.content.decode()
    assert response.status_code == 200
    assert "12 samples" in body and "Page 1 of 2" in body
    assert len(response.context["page"]) == 10
    assert "Incorrect" in body and "Correct" in body
    assert "<code>5</code>" in body and "4321 tokens" in body
    assert "truncated" in body and "repetition" in body
    assert "<strong>bold</strong>" in body
    assert "<script>alert" not in body and "<script>evil" not in body and "onerror" not in body
    assert "other-campaign" not in body
    assert "Thought: 2 paragraphs" in body

    assert len(client.get(path, {"page": 2}).context["page"]) == 2
    incorrect = client.get(path, {"verdict": "incorrect"})
    assert [s.sample_index for s in incorrect.context["page"]] == [0]
    assert client.get(f"/problems/{problem.pk}/campaigns/999999/samples/").status_code == 404


def test_next_problem_leases_what_the_model_fails_most_first(annotator_user):
    campaign = CampaignFactory()
    plain, solved, tied_annotated, tied, failed = ProblemFactory.create_batch(5)
    DifficultyFactory(problem=solved, campaign=campaign, correct=16)
    DifficultyFactory(problem=tied_annotated, campaign=campaign, correct=4)
    DifficultyFactory(problem=tied, campaign=campaign, correct=4)
    DifficultyFactory(problem=failed, campaign=campaign, correct=0)
    DifficultyFactory(problem=plain, correct=0)  # another campaign's figures do not count
    AnnotationFactory(problem=tied_annotated, status="submitted")

    # Without the setting: import order.
    first = services.annotation_claim(annotator=annotator_user)
    assert first.problem == plain
    first.delete()

    _lease_by(campaign)
    WorkspaceSettings.objects.filter(pk=1).update(annotations_per_problem=2)
    _settings_cache.clear()
    order = [services.annotation_claim(annotator=annotator_user).problem for _ in range(5)]
    assert order == [failed, tied, tied_annotated, solved, plain]


def test_next_problem_skips_problems_solved_in_at_least_k_samples(annotator_user):
    campaign = CampaignFactory()
    solved, almost, unsampled = ProblemFactory.create_batch(3)
    DifficultyFactory(problem=solved, campaign=campaign, correct=12)
    DifficultyFactory(problem=almost, campaign=campaign, correct=11)
    _lease_by(campaign, skip_solved=12)
    leased = [
        services.annotation_claim(annotator=UserFactory(role=Role.ANNOTATOR)) for _ in range(3)
    ]
    assert [a.problem if a else None for a in leased] == [almost, unsampled, None]
    assert not Annotation.objects.filter(problem=solved).exists()


def test_workspace_settings_admin_offers_the_campaigns(client_as, admin_user):
    campaign = CampaignFactory(name="round-seven")
    form = WorkspaceSettingsForm(instance=WorkspaceSettings.objects.get_or_create(pk=1)[0])
    editable = {f.name for f in WorkspaceSettings._meta.fields if f.editable and not f.primary_key}
    assert set(form.fields) == editable
    assert (
        "round-seven"
        in client_as(admin_user)
        .get("/admin/annotator/workspacesettings/1/change/")
        .content.decode()
    )

    base = {"annotations_per_problem": 1, "lease_minutes": 60, "min_steps": 3,
            "raters_per_trace": 1}  # fmt: skip
    form = WorkspaceSettingsForm(
        {**base, "lease_campaign": "", "lease_skip_solved": 4}, instance=WorkspaceSettings(pk=1)
    )
    assert "lease_skip_solved" in form.errors
    form = WorkspaceSettingsForm(
        {**base, "lease_campaign": str(campaign.pk), "lease_skip_solved": 4},
        instance=WorkspaceSettings.objects.get(pk=1),
    )
    assert form.is_valid(), form.errors
    form.save()
    rules = WorkspaceSettings.objects.get(pk=1)
    assert (rules.lease_campaign, rules.lease_skip_solved) == (campaign.pk, 4)


def test_difficulty_admin_is_read_only_with_its_filters(client_as, admin_user):
    difficulty = DifficultyFactory(majority_answer=MAJORITY, reference_disputed=True)
    DifficultyFactory(majority_answer="calm")
    admin = client_as(admin_user)
    listed = admin.get(
        "/admin/expansion/problemdifficulty/",
        {"reference_disputed__exact": "1", "campaign__id__exact": difficulty.campaign_id},
    )
    body = listed.content.decode()
    assert listed.status_code == 200
    assert MAJORITY in body and "calm" not in body
    page = admin.get(f"/admin/expansion/problemdifficulty/{difficulty.pk}/change/")
    assert page.status_code == 200
    assert 'name="pass_rate"' not in page.content.decode()  # shown, not editable
    assert admin.get("/admin/expansion/problemdifficulty/add/").status_code == 403

    admin.post("/admin/expansion/problemdifficulty/", {
        "action": "mark_disputes_checked", "_selected_action": [difficulty.pk],
    })  # fmt: skip
    assert ProblemDifficulty.objects.get(pk=difficulty.pk).dispute_checked_by == admin_user


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL"
)
def test_simultaneous_claims_by_difficulty_never_share_a_problem():
    campaign = CampaignFactory()
    problems = ProblemFactory.create_batch(10)
    for n, problem in enumerate(problems):
        DifficultyFactory(problem=problem, campaign=campaign, correct=n)
    _lease_by(campaign)
    annotators = [UserFactory(username=f"d{n}", role=Role.ANNOTATOR) for n in range(6)]
    start = threading.Barrier(len(annotators))
    claimed, errors = [], []

    def claim(user):
        try:
            start.wait()
            for _ in range(2):
                annotation = services.annotation_claim(annotator=user)
                if annotation:
                    claimed.append(annotation.problem_id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=claim, args=(user,)) for user in annotators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(claimed) == 10 and len(set(claimed)) == 10
