"""Stored signatures and incremental regrouping of near-duplicate problems."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from annotator import near_duplicates
from annotator.models import NearDuplicate, Problem, ProblemSignature
from annotator.near_duplicates import Sketch, signature
from annotator.problem_groups import problem_groups_store, stale_problems
from annotator.problem_import import problems_import
from tests.annotator.test_near_duplicates import ALSO_OTHER, BASE, NEAR, OTHER

pytestmark = pytest.mark.django_db

# Made-up words: X, Y and Z are prefixes of one text, each a near-duplicate of the next
# (estimated Jaccard 0.875 and 0.85) while X and Z are not (0.73), so Y links them.
WORDS = [f"w{n}q{n * 7 % 13}" for n in range(60)]
X, Y, Z = (" ".join(WORDS[:size]) for size in (32, 36, 40))
FRESH = "A fair coin is tossed ten times; what is the probability of exactly seven heads?"


@pytest.fixture
def hashed(monkeypatch):
    """The statements signatures were made of, each call of near_duplicates.signatures."""
    made, calls = near_duplicates.signatures, []

    def counting(texts):
        calls.append(list(texts))
        return made(texts)

    monkeypatch.setattr(near_duplicates, "signatures", counting)
    return calls


def statements_hashed(calls) -> list[str]:
    return [text for call in calls for text in call]


def bank_import(tmp_path, rows: dict[str, str], *, name="bank.jsonl", **options):
    path = tmp_path / name
    path.write_text("".join(
        json.dumps({"problem": text, "answer": "1", "unique_id": key}) + "\n"
        for key, text in rows.items()
    ))  # fmt: skip
    return problems_import(path=path, source="bank", **options)


def groups() -> dict[str, str]:
    """Each grouped problem's id -> the id of its group's first problem."""
    ids = dict(Problem.objects.values_list("pk", "external_id"))
    return {ids[pk]: ids[group] for pk, group in NearDuplicate.objects.values_list(
        "problem_id", "group")}  # fmt: skip


def regrouped_in_full() -> dict[str, str]:
    problem_groups_store(recompute=False)
    return groups()


def test_y_links_x_and_z_in_an_in_memory_sketch_too():
    sketch = Sketch()
    for key, text in (("x", X), ("z", Z)):
        sketch.add(key, signature(text))
    assert sorted(sketch.similar(signature(Y))) == ["x", "z"]
    assert sketch.similar(signature(X), besides="x") == []


def test_an_import_hashes_only_its_rows_and_groups_as_a_full_regroup_would(tmp_path, hashed):
    bank_import(tmp_path, {"base": BASE, "other": OTHER, "x": X, "z": Z, "fresh": FRESH})
    assert ProblemSignature.objects.count() == 5
    assert groups() == {}
    hashed.clear()

    report = bank_import(tmp_path, {"near": NEAR, "y": Y, "also": ALSO_OTHER, "also2": ALSO_OTHER},
                         name="second.jsonl")  # fmt: skip

    # Only the four incoming statements were hashed; the bank's came from the database.
    assert sorted(statements_hashed(hashed)) == sorted([NEAR, Y, ALSO_OTHER, ALSO_OTHER])
    # NEAR (of BASE) and Y (of X and of Z) are near-duplicates of the bank; the two copies
    # of ALSO_OTHER only of each other.
    assert report.near_duplicates == 2
    expected = {"base": "base", "near": "base", "x": "x", "y": "x", "z": "x",
                "also": "also", "also2": "also"}  # fmt: skip
    assert groups() == expected
    assert regrouped_in_full() == expected


def test_a_changed_statement_splits_the_group_it_held_together(tmp_path):
    bank_import(tmp_path, {"x": X, "y": Y, "z": Z, "base": BASE, "near": NEAR})
    assert groups() == {"x": "x", "y": "x", "z": "x", "base": "base", "near": "base"}

    report = bank_import(tmp_path, {"y": FRESH}, name="second.jsonl")

    assert report.updated == 1 and report.near_duplicates == 0
    # Without Y, X and Z are no near-duplicates; the other group is left as it was.
    assert groups() == {"base": "base", "near": "base"}
    assert regrouped_in_full() == {"base": "base", "near": "base"}


def test_a_changed_statement_gets_a_fresh_signature(tmp_path, hashed):
    bank_import(tmp_path, {"a": BASE, "b": OTHER})
    problem = Problem.objects.get(external_id="a")
    before = ProblemSignature.objects.get(problem=problem)

    bank_import(tmp_path, {"a": FRESH, "b": OTHER}, name="second.jsonl")

    after = ProblemSignature.objects.get(problem=problem)
    assert bytes(after.hashes) == near_duplicates.signature_bytes([FRESH])[0]
    assert bytes(after.hashes) != bytes(before.hashes) and after.computed_at > before.computed_at


def test_a_statement_saved_elsewhere_is_hashed_again_by_the_next_import(tmp_path, hashed):
    bank_import(tmp_path, {"a": BASE, "b": OTHER, "c": ALSO_OTHER})
    other = Problem.objects.get(external_id="b")
    other.statement = NEAR
    other.save()
    assert list(stale_problems()) == [other]
    hashed.clear()

    report = bank_import(tmp_path, {"d": FRESH}, name="second.jsonl")

    assert sorted(statements_hashed(hashed)) == sorted([NEAR, FRESH])
    assert report.near_duplicates == 0
    assert bytes(other.signature.hashes) == near_duplicates.signature_bytes([NEAR])[0]
    assert groups() == {"a": "a", "b": "a"}
    assert not stale_problems().exists()


def test_changed_settings_make_every_signature_and_group_again(tmp_path, hashed, settings):
    bank_import(tmp_path, {"a": BASE, "b": NEAR, "c": OTHER})
    assert groups() == {"a": "a", "b": "a"}
    settings.NEAR_DUPLICATE_THRESHOLD = 0.95
    assert stale_problems().count() == 3
    hashed.clear()

    bank_import(tmp_path, {"d": FRESH}, name="second.jsonl")

    assert sorted(statements_hashed(hashed)) == sorted([BASE, NEAR, OTHER, FRESH])
    assert set(ProblemSignature.objects.values_list("params", flat=True)) == {
        near_duplicates.params()
    }
    assert "threshold=0.95" in near_duplicates.params()
    # At 0.95 one changed word of 29 is no longer enough.
    assert groups() == {}


def test_a_changed_shingle_size_gives_other_signatures(tmp_path, settings):
    bank_import(tmp_path, {"a": BASE})
    three = bytes(ProblemSignature.objects.get().hashes)
    settings.NEAR_DUPLICATE_SHINGLE = 2
    bank_import(tmp_path, {"b": FRESH}, name="second.jsonl")
    two = bytes(Problem.objects.get(external_id="a").signature.hashes)
    assert two != three and two == near_duplicates.signature_bytes([BASE])[0]


def test_a_dry_run_compares_with_fresh_signatures_and_stores_none(tmp_path, hashed):
    bank_import(tmp_path, {"a": OTHER})
    problem = Problem.objects.get()
    problem.statement = BASE
    problem.save()
    stored = bytes(problem.signature.hashes)

    report = bank_import(tmp_path, {"n": NEAR}, name="second.jsonl", dry_run=True)

    assert report.near_duplicates == 1
    problem.refresh_from_db()
    assert bytes(problem.signature.hashes) == stored and Problem.objects.count() == 1
    assert not NearDuplicate.objects.exists()


def test_decontaminate_makes_every_signature_again(tmp_path, hashed):
    bank_import(tmp_path, {"a": BASE, "b": NEAR, "c": OTHER})
    NearDuplicate.objects.all().delete()
    hashed.clear()
    call_command("decontaminate", stdout=StringIO())
    assert sorted(statements_hashed(hashed)) == sorted([BASE, NEAR, OTHER])
    assert groups() == {"a": "a", "b": "a"}


def test_an_admin_edit_of_a_statement_regroups_it(tmp_path, client_as, admin_user):
    bank_import(tmp_path, {"a": BASE, "b": OTHER})
    other = Problem.objects.get(external_id="b")
    response = client_as(admin_user).post(f"/admin/annotator/problem/{other.pk}/change/", {
        "source": "bank", "external_id": "b", "statement": NEAR, "reference_answer": "1",
        "reference_solution": "", "subject": "", "level": "", "metadata": "{}",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    assert groups() == {"a": "a", "b": "a"}
    assert not stale_problems().exists()


def test_an_incoming_row_joins_a_group_through_one_member_and_keeps_the_others(tmp_path):
    bank_import(tmp_path, {"x": X, "y": Y, "base": BASE, "near": NEAR})
    assert groups() == {"x": "x", "y": "x", "base": "base", "near": "base"}

    # Z is a near-duplicate of Y alone; X stays in the group through Y, unread again.
    report = bank_import(tmp_path, {"z": Z}, name="second.jsonl")

    assert report.near_duplicates == 1
    expected = {"x": "x", "y": "x", "z": "x", "base": "base", "near": "base"}
    assert groups() == expected
    assert regrouped_in_full() == expected
