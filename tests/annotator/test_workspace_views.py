import pytest

from annotator import services
from annotator.models import Annotation
from tests.factories import AnnotationFactory, ProblemFactory

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def form(steps, version, answer="", **extra):
    data = {"version": version, "final_answer": answer, "kind": [], "text": [], "notes": []}
    for kind, text, notes in steps:
        data["kind"].append(kind)
        data["text"].append(text)
        data["notes"].append(notes)
    return {**data, **extra}


@pytest.fixture
def draft(annotator_user):
    ProblemFactory(
        statement="Find $x$ if $x+x=8$.", reference_answer="4", reference_solution="SECRET"
    )
    return services.annotation_claim(annotator=annotator_user)


def test_home_offers_the_next_problem_and_lists_drafts(client_as, annotator_user, draft):
    body = client_as(annotator_user).get("/").content.decode()
    assert "Next problem" in body
    assert f"/annotations/{draft.pk}/" in body


def test_next_problem_opens_the_editor_without_the_reference(client_as, annotator_user):
    ProblemFactory(
        statement="Find $y$.", reference_answer="REF-ANSWER", reference_solution="REF-SOL"
    )
    client = client_as(annotator_user)
    response = client.post("/annotations/next/", follow=True)
    body = response.content.decode()
    assert "Find $y$." in body and "Guidelines" in body
    assert "REF-ANSWER" not in body and "REF-SOL" not in body
    assert client.post("/annotations/next/", follow=True).redirect_chain[-1][0] == "/"


def test_autosave_returns_the_new_version(client_as, annotator_user, draft):
    client = client_as(annotator_user)
    data = form(
        [("attempt", "Try 3.", "small numbers\nfirst")], version=1, answer="3", elapsed="20"
    )
    response = client.post(f"/annotations/{draft.pk}/save/", data, headers=HTMX)
    assert response.status_code == 200
    assert (
        'value="2"' in response.content.decode()
        and "Saved · version 2" in response.content.decode()
    )
    draft.refresh_from_db()
    assert draft.steps == [
        {"kind": "attempt", "text": "Try 3.", "notes": ["small numbers", "first"]}
    ]
    assert draft.time_spent_seconds == 20


def test_a_stale_autosave_shows_both_versions(client_as, annotator_user, draft):
    client = client_as(annotator_user)
    client.post(
        f"/annotations/{draft.pk}/save/", form([("attempt", "From tab one", "")], 1), headers=HTMX
    )
    response = client.post(
        f"/annotations/{draft.pk}/save/", form([("attempt", "From tab two", "")], 1), headers=HTMX
    )
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#conflict"
    body = response.content.decode()
    assert "From tab one" in body and "From tab two" in body and "Keep mine" in body
    draft.refresh_from_db()
    assert draft.steps[0]["text"] == "From tab one"
    # Keeping mine is a save based on the version the conflict showed.
    kept = client.post(
        f"/annotations/{draft.pk}/steps/",
        form([("attempt", "From tab two", "")], 2, op="overwrite"),
        headers=HTMX,
    )
    assert kept.status_code == 200
    draft.refresh_from_db()
    assert draft.steps[0]["text"] == "From tab two" and draft.version == 3


@pytest.mark.parametrize(
    ("op", "index", "expected"),
    [
        ("add", "", ["a", "b", ""]),
        ("insert", "1", ["a", "", "b"]),
        ("delete", "0", ["b"]),
        ("up", "1", ["b", "a"]),
        ("down", "0", ["b", "a"]),
    ],
)
def test_step_operations(client_as, annotator_user, draft, op, index, expected):
    client = client_as(annotator_user)
    data = form([("attempt", "a", ""), ("reflection", "b", "")], 1, op=op, index=index)
    response = client.post(f"/annotations/{draft.pk}/steps/", data, headers=HTMX)
    assert response.status_code == 200
    draft.refresh_from_db()
    assert [step["text"] for step in draft.steps] == expected
    assert f'value="{draft.version}"' in response.content.decode()


def test_submit_shows_every_error_then_asks_to_confirm_a_mismatch(client_as, annotator_user, draft):
    client = client_as(annotator_user)
    url = f"/annotations/{draft.pk}/submit/"
    response = client.post(url, form([("attempt", "x", "")], 1))
    body = response.content.decode()
    assert response.status_code == 400
    assert "Record at least 3 steps" in body and "Give a final answer." in body

    steps = [("attempt", "x=3", ""), ("reflection", "3+3 is 6", ""), ("correction", "x=5", "")]
    response = client.post(url, form(steps, 2, answer="5"))
    assert "does not match the reference answer" in response.content.decode()
    assert 'name="confirm_mismatch"' in response.content.decode()
    assert "4" not in response.content.decode().split("does not match")[1][:80]

    response = client.post(url, form(steps, 3, answer="5", confirm_mismatch="1"))
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == "submitted" and draft.mismatch_confirmed


def test_someone_elses_annotation_is_not_found(client_as, annotator_user):
    other = AnnotationFactory()
    client = client_as(annotator_user)
    assert client.get(f"/annotations/{other.pk}/").status_code == 404
    assert client.post(f"/annotations/{other.pk}/save/", form([], 1)).status_code == 404


def test_reviewers_see_a_read_only_record_with_the_reference(client_as, reviewer_user):
    annotation = AnnotationFactory(
        steps=[{"kind": "attempt", "text": "Try **this**", "notes": ["A fact"]}],
        status=Annotation.Status.SUBMITTED,
    )
    body = client_as(reviewer_user).get(f"/annotations/{annotation.pk}/").content.decode()
    assert "<strong>this</strong>" in body and "A fact" in body
    assert "Reference answer" in body
    assert 'id="editor"' not in body


def test_typed_script_is_shown_as_text(client_as, annotator_user, draft):
    client = client_as(annotator_user)
    payload = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    client.post(f"/annotations/{draft.pk}/save/", form([("attempt", payload, payload)], 1))
    body = client.get(f"/annotations/{draft.pk}/").content.decode()
    assert "<script>alert(1)" not in body
    assert "<img src=x onerror" not in body
    preview = client.post("/annotations/preview/", {"text": payload}).content.decode()
    assert "script" not in preview and "onerror" not in preview


def test_returned_annotation_reopens_with_the_reviewers_comment(client_as, annotator_user, draft):
    Annotation.objects.filter(pk=draft.pk).update(
        status=Annotation.Status.RETURNED, return_comment="Step 2 skips the <b>reason</b>."
    )
    body = client_as(annotator_user).get(f"/annotations/{draft.pk}/").content.decode()
    assert 'id="editor"' in body
    assert (
        "Returned by a reviewer" in body and "Step 2 skips the &lt;b&gt;reason&lt;/b&gt;." in body
    )


def test_admin_views_and_restores_revisions(client_as, admin_user, annotator_user, draft):
    for version, text in ((1, "first <script>x</script>"), (2, "second")):
        services.annotation_save(
            annotation_id=draft.pk, user=annotator_user, base_version=version,
            steps=[{"kind": "attempt", "text": text, "notes": []}], final_answer="",
        )  # fmt: skip
    client = client_as(admin_user)
    page = client.get(f"/admin/annotator/annotation/{draft.pk}/change/").content.decode()
    assert "second" in page and "Version" in page
    first = draft.revisions.get(version=2)
    detail = client.get(f"/admin/annotator/annotationrevision/{first.pk}/change/").content.decode()
    assert "first &lt;script&gt;x&lt;/script&gt;" in detail
    client.post(
        "/admin/annotator/annotationrevision/",
        {"action": "restore", "_selected_action": [first.pk]},
    )
    draft.refresh_from_db()
    assert draft.version == 4 and draft.steps[0]["text"].startswith("first")
