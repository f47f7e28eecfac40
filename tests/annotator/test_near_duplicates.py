import json
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotator.models import NearDuplicate, Problem
from annotator.near_duplicates import Sketch, signature

pytestmark = pytest.mark.django_db

BASE = (
    "A bag holds twelve red marbles, eight blue marbles and five green marbles. Two marbles "
    "are drawn at random without replacement. What is the probability that both are red?"
)
# One word of 29 changed: most shingles are shared.
NEAR = BASE.replace("eight blue", "nine blue")
OTHER = (
    "A train leaves the station at noon travelling at sixty miles per hour; a second train "
    "follows an hour later at eighty. When does the second train catch the first?"
)
ALSO_OTHER = "Find all real $x$ such that $x^2 - 5x + 6 = 0$."


def write(path, statements, prefix="p"):
    path.write_text("".join(
        json.dumps({"problem": text, "answer": "1", "unique_id": f"{prefix}/{n}"}) + "\n"
        for n, text in enumerate(statements)
    ))  # fmt: skip
    return path


def run_import(path, source="bank", *extra):
    out = StringIO()
    call_command("import_problems", str(path), "--source", source, *extra, stdout=out,
                 stderr=StringIO())  # fmt: skip
    return out.getvalue()


def test_distinct_texts_are_not_near_duplicates():
    sketch = Sketch()
    for key, text in enumerate([BASE, OTHER, ALSO_OTHER]):
        sketch.add(key, signature(text))
    assert sketch.similar(signature(BASE), besides=0) == []
    assert sketch.groups() == []


def test_one_word_changed_is_a_near_duplicate_and_the_threshold_decides(settings):
    sketch = Sketch()
    sketch.add("base", signature(BASE))
    assert sketch.similar(signature(NEAR)) == ["base"]
    strict = Sketch(threshold=0.95)
    strict.add("base", signature(BASE))
    assert strict.similar(signature(NEAR)) == []


def test_import_counts_incoming_near_duplicates_and_stores_groups(tmp_path):
    out = run_import(write(tmp_path / "first.jsonl", [BASE, OTHER]))
    assert "0 incoming row(s) are near-duplicates" in out
    assert not NearDuplicate.objects.exists()
    out = run_import(write(tmp_path / "second.jsonl", [NEAR, ALSO_OTHER], prefix="q"))
    assert "1 incoming row(s) are near-duplicates of problems already in the bank." in out
    base, near = Problem.objects.get(statement=BASE), Problem.objects.get(statement=NEAR)
    groups = dict(NearDuplicate.objects.values_list("problem_id", "group"))
    assert groups == {base.pk: base.pk, near.pk: base.pk}


def test_reimporting_the_same_file_finds_no_near_duplicate_of_itself(tmp_path):
    path = write(tmp_path / "bank.jsonl", [BASE, OTHER])
    run_import(path)
    assert "0 incoming row(s) are near-duplicates" in run_import(path)


def test_a_dry_run_counts_without_storing(tmp_path):
    run_import(write(tmp_path / "first.jsonl", [BASE]))
    out = run_import(write(tmp_path / "second.jsonl", [NEAR], prefix="q"), "bank", "--dry-run")
    assert "1 incoming row(s) are near-duplicates" in out
    assert Problem.objects.count() == 1 and not NearDuplicate.objects.exists()


def test_the_api_import_reports_near_duplicates(tmp_path, api_as, admin_user):
    run_import(write(tmp_path / "first.jsonl", [BASE]))
    body = write(tmp_path / "second.jsonl", [NEAR, OTHER], prefix="q").read_bytes()
    upload = SimpleUploadedFile("second.jsonl", body, content_type="application/jsonl")
    response = api_as(admin_user).post(
        "/api/problems/import/", {"file": upload, "source": "bank"}, format="multipart"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["near_duplicates"] == 1
    assert response.json()["contaminated"] == {}


def test_problem_page_lists_its_group(tmp_path, client_as, reviewer_user):
    run_import(write(tmp_path / "bank.jsonl", [BASE, NEAR, OTHER]))
    base = Problem.objects.get(statement=BASE)
    page = client_as(reviewer_user).get(f"/problems/{base.pk}/").content.decode()
    assert "1 other problem of the bank states nearly the same" in page
    assert "bank:p/1" in page and "bank:p/2" not in page
    other = Problem.objects.get(statement=OTHER)
    page = client_as(reviewer_user).get(f"/problems/{other.pk}/").content.decode()
    assert "No other problem of the bank is a near-duplicate of this one." in page
