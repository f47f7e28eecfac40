import zipfile

import pytest

from curation import services
from curation.models import Export
from tests.factories import TraceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(reviewer_user):
    trace = TraceFactory()
    services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
    return trace


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
