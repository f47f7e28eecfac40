import json
import zipfile

import pytest

from curation import services
from curation.exports.writer import split_of
from curation.models import Export
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(reviewer_user):
    trace = TraceFactory()
    services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
    return trace


@pytest.fixture
def exported(api_as, admin_user, settings, tmp_path, tasks_inline,
             django_capture_on_commit_callbacks):  # fmt: skip
    """Run an export through the API, worker inline; its details as the API answers them."""
    settings.VAR_DIR = tmp_path
    api = api_as(admin_user)

    def run(options: dict) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/exports/", options, format="json")
        return api.get(f"/api/exports/{response.json()['id']}/").json()

    return run


def test_admin_starts_an_export_through_the_api_and_downloads_it(
    api_as, admin_user, approved, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.VAR_DIR = tmp_path
    api = api_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/exports/", {"format": "sharegpt", "split": "train=1"},
                            format="json")  # fmt: skip
    assert response.status_code == 202
    export_id = response.json()["id"]
    detail = api.get(f"/api/exports/{export_id}/").json()
    assert detail["status"] == "succeeded" and detail["counts"] == {"train": 1}
    assert len(detail["files"][0]["sha256"]) == 64
    download = api.get(f"/api/exports/{export_id}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"".join(download.streaming_content))
    names = zipfile.ZipFile(archive).namelist()
    assert f"export-{export_id}/train.jsonl" in names
    assert f"export-{export_id}/manifest.json" in names


def test_a_failed_export_says_why(api_as, admin_user, settings, tmp_path, tasks_inline,
                                  django_capture_on_commit_callbacks):  # fmt: skip
    settings.VAR_DIR = tmp_path
    with django_capture_on_commit_callbacks(execute=True):
        response = api_as(admin_user).post("/api/exports/", {"format": "messages"}, format="json")
    export = Export.objects.get(pk=response.json()["id"])
    assert export.status == "failed" and "Nothing to export" in export.error
    assert api_as(admin_user).get(f"/api/exports/{export.pk}/download/").status_code == 404


def test_bad_export_options_are_refused(api_as, admin_user):
    response = api_as(admin_user).post("/api/exports/", {"format": "csv", "split": "a=2"},
                                       format="json")  # fmt: skip
    assert response.status_code == 400 and {"format", "split"} <= set(response.json())


def test_non_admins_cannot_export_or_download(api_as, client_as, reviewer_user, annotator_user):
    export = Export.objects.create(format="messages", status="succeeded")
    for user in (reviewer_user, annotator_user):
        api = api_as(user)
        assert api.post("/api/exports/", {"format": "messages"}).status_code == 403
        assert api.get(f"/api/exports/{export.pk}/download/").status_code == 403
        assert client_as(user).get("/exports/").status_code == 403
        assert client_as(user).get(f"/exports/{export.pk}/download/").status_code == 403


def test_export_page_starts_and_lists_exports(
    client_as, admin_user, approved, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.VAR_DIR = tmp_path
    client = client_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        form = {"format": "alpaca", "style": "still", "split": "train=1", "seed": "0"}
        response = client.post("/exports/", {**form, "status": "approved"})
    assert response.status_code == 302
    body = client.get("/exports/").content.decode()
    assert "succeeded" in body and "train.jsonl" in body and "Download" in body
    bad = client.post("/exports/", {"format": "alpaca", "split": "train=0.5"})
    assert "add up to 1" in bad.content.decode()


def test_a_failed_export_of_simulated_traces_says_how_to_include_them(
    exported, client_as, admin_user, reviewer_user
):
    trace = TraceFactory(is_simulated=True)
    services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
    assert exported({"format": "messages"})["error"] == (
        "Nothing to export: no trace matches these filters. Of 1 approved trace, 1 is simulated "
        'and left out (tick "Include simulated traces" (include_simulated in the API) to '
        "export it)."
    )
    body = client_as(admin_user).get("/exports/").content.decode()
    assert "1 is simulated and left out" in body and "Include simulated traces" in body


def test_the_api_export_manifest_keeps_each_option_s_type(exported, approved):
    detail = exported({"format": "alpaca", "checks_passed": True, "level": 2, "min_tokens": 5,
                       "since": "2020-01-31", "seed": 4})  # fmt: skip
    assert detail["status"] == "succeeded", detail["error"]
    filters = detail["manifest"]["filters"]
    assert filters["checks_passed"] is True and filters["include_simulated"] is False
    assert filters["level"] == 2 and filters["min_tokens"] == 5
    assert filters["since"] == "2020-01-31" and detail["manifest"]["seed"] == 4
    archive = zipfile.ZipFile(Export.objects.get(pk=detail["id"]).archive)
    written = json.loads(archive.read(f"export-{detail['id']}/manifest.json"))
    assert written["filters"] == filters


def test_the_export_page_warns_of_an_empty_split(
    client_as, admin_user, approved, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.VAR_DIR = tmp_path
    problem = approved.annotation.problem
    key, splits = f"{problem.source}:{problem.external_id}", {"train": 0.5, "test": 0.5}
    seed = next(seed for seed in range(200) if split_of(key, splits, seed) == "train")
    client = client_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/exports/", {"format": "messages", "style": "think-tags",
                                  "split": "train=0.5,test=0.5", "seed": str(seed)})  # fmt: skip
    export = Export.objects.get()
    assert export.status == "succeeded" and [f["name"] for f in export.files] == ["train.jsonl"]
    body = client.get("/exports/").content.decode()
    assert "Warning: Split &#x27;test&#x27; is empty" in body
    assert f"export-{export.pk}/test.jsonl" not in zipfile.ZipFile(export.archive).namelist()


def test_the_api_refuses_dpo_pairs_in_the_reasoning_field_style(api_as, admin_user):
    response = api_as(admin_user).post("/api/exports/", {"format": "dpo",
                                       "style": "reasoning-field"}, format="json")  # fmt: skip
    assert response.status_code == 400 and "does not fit dpo" in str(response.json()["style"])
    assert not Export.objects.exists()


def test_the_export_page_names_its_days_by_what_they_mean(
    client_as, admin_user, approved, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    settings.VAR_DIR = tmp_path
    client = client_as(admin_user)
    body = client.get("/exports/").content.decode()
    for label, name in [("Created since", "created_since"), ("Created until", "created_until"),
                        ("Finished since", "finished_since"),
                        ("Finished until", "finished_until")]:  # fmt: skip
        assert f'{label} <input type="date" name="{name}"' in body
    assert 'name="since"' not in body and 'name="until"' not in body
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/exports/", {"format": "messages", "finished_since": "2999-01-01"})
    export = Export.objects.get()
    assert export.status == "failed" and export.error.startswith("Nothing to export")
    assert export.filters["finished_since"] == "2999-01-01"
