"""The whole pipeline through the API alone, as a team's script would drive it.

Import problems, claim and write an annotation, submit it, wait for its trace (expanded by
the real openai client against the simulated endpoint), review it, export and download.
Celery runs tasks inline here; tests/expansion/test_worker_integration.py covers a real worker.
"""

import io
import json
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from annotator.roles import Role
from devtools.simulator import SimulatedLLM
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def token_client(username: str) -> APIClient:
    api = APIClient()
    token = api.post(
        "/api/auth/token/", {"username": username, "password": "correct-horse-battery"}
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    return api


def test_import_annotate_expand_review_export(settings, tmp_path, tasks_inline,
                                              django_capture_on_commit_callbacks):  # fmt: skip
    settings.VAR_DIR = tmp_path
    for name, role in (("boss", Role.ADMIN), ("ann", Role.ANNOTATOR), ("rev", Role.REVIEWER)):
        UserFactory(username=name, role=role)
    admin, annotator, reviewer = token_client("boss"), token_client("ann"), token_client("rev")

    with SimulatedLLM(seconds_per_token=0.0001, target_tokens=200) as simulator:
        settings.LLM_BASE_URL = settings.LLM_MODEL = ""
        settings.LLM_SIMULATOR_URL = simulator.base_url
        bank = json.dumps({"problem": "What is $2+2$?", "solution": "4", "answer": "4",
                           "subject": "Arithmetic", "level": 1, "unique_id": "p1"})  # fmt: skip
        upload = SimpleUploadedFile("bank.jsonl", bank.encode() + b"\n")
        imported = admin.post("/api/problems/import/", {"file": upload, "source": "mini"},
                              format="multipart")  # fmt: skip
        assert imported.json()["created"] == 1

        draft = annotator.post("/api/annotations/claim/").json()
        steps = [
            {"kind": "attempt", "text": "Two plus two is five?", "notes": []},
            {"kind": "reflection", "text": "Count on fingers: two, then two more", "notes": []},
            {"kind": "correction", "text": "Two plus two is four", "notes": ["Counting."]},
        ]
        saved = annotator.patch(f"/api/annotations/{draft['id']}/",
                                {"version": draft["version"], "steps": steps, "final_answer": "4"},
                                format="json")  # fmt: skip
        assert saved.status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            submitted = annotator.post(f"/api/annotations/{draft['id']}/submit/", {}, format="json")
        assert submitted.json()["status"] == "submitted"

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            traces = reviewer.get("/api/traces/", {"annotation": draft["id"]}).json()["results"]
            if traces and traces[0]["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        assert traces[0]["status"] == "succeeded", traces
        assert simulator.stats()["completed"] == 1

    queue = reviewer.get("/api/review-queue/").json()
    assert [t["id"] for t in queue["results"]] == [traces[0]["id"]]
    decided = reviewer.post(f"/api/traces/{traces[0]['id']}/review/", {"decision": "approve"},
                            format="json")  # fmt: skip
    assert decided.status_code == 201

    with django_capture_on_commit_callbacks(execute=True):
        export = admin.post("/api/exports/", {"format": "messages", "include_simulated": True},
                            format="json").json()  # fmt: skip
    assert admin.get(f"/api/exports/{export['id']}/").json()["counts"] == {"train": 1}
    download = admin.get(f"/api/exports/{export['id']}/download/")
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    record = json.loads(archive.read(f"export-{export['id']}/train.jsonl").decode())
    assert record["messages"][0] == {"role": "user", "content": "What is $2+2$?"}
    assert record["metadata"]["review"] == "approved" and record["metadata"]["simulated"]
