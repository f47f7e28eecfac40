import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotator.models import Benchmark, Contamination
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db

ITEM = "Find the number of ordered pairs of integers $(a, b)$ with $a^2 + b^2 = 2025$ and $a < b$."


@pytest.fixture
def marked(tmp_path):
    dirty = ProblemFactory(external_id="dirty", statement=ITEM)
    clean = ProblemFactory(external_id="clean", statement="What is $2 + 3$?")
    path = tmp_path / "aime25.jsonl"
    path.write_text(json.dumps({"problem": ITEM, "id": "II-7"}) + "\n")
    call_command("benchmarks_add", str(path), "--name", "aime25", stdout=StringIO())
    return dirty, clean


def test_list_shows_a_badge_and_filters(marked, client_as, reviewer_user):
    client = client_as(reviewer_user)
    page = client.get("/problems/").content.decode()
    assert page.count(">in aime25</span>") == 1
    assert '<option value="aime25"' in page
    assert "test:dirty" in client.get("/problems/?contamination=aime25").content.decode()
    clean = client.get("/problems/?contamination=clean").content.decode()
    assert "test:clean" in clean and "test:dirty" not in clean
    assert "test:clean" not in client.get("/problems/?contamination=contaminated").content.decode()


def test_problem_page_shows_the_benchmark_item_and_ngrams(marked, client_as, reviewer_user):
    dirty, clean = marked
    page = client_as(reviewer_user).get(f"/problems/{dirty.pk}/").content.decode()
    assert "Contaminated: aime25" in page and "the same text after normalization" in page
    assert "II-7" in page
    assert "<code>find the number of ordered pairs of integers</code>" in page
    page = client_as(reviewer_user).get(f"/problems/{clean.pk}/").content.decode()
    assert "No registered benchmark contains this problem." in page


def test_api_lists_and_filters_contamination(marked, api_as, reviewer_user):
    api = api_as(reviewer_user)
    rows = api.get("/api/problems/?contamination=aime25").json()["results"]
    assert [(r["external_id"], r["contaminated_by"]) for r in rows] == [("dirty", ["aime25"])]


def test_admin_adds_a_benchmark_from_a_file(client_as, admin_user):
    problem = ProblemFactory(statement=ITEM)
    body = (json.dumps({"question": ITEM}) + "\n").encode()
    response = client_as(admin_user).post("/admin/annotator/benchmark/add/", {
        "name": "aime25", "text_field": "question",
        "file": SimpleUploadedFile("aime25.jsonl", body),
    }, follow=True)  # fmt: skip
    assert "1 problem(s) of the bank overlap this benchmark" in response.content.decode()
    assert Contamination.objects.get().problem == problem


def test_admin_refuses_a_bad_file_naming_its_lines(client_as, admin_user):
    body = b'{"problem": "ok"}\n{"problem": ""}\n'
    response = client_as(admin_user).post("/admin/annotator/benchmark/add/", {
        "name": "bad", "text_field": "problem", "file": SimpleUploadedFile("bad.jsonl", body),
    })  # fmt: skip
    page = response.content.decode()
    assert "line 2, field &#x27;problem&#x27;: missing or empty" in page
    assert "Nothing was stored." in page
    assert not Benchmark.objects.exists()
