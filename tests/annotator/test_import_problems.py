import json
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.models import Problem

MATH500 = Path(settings.BASE_DIR) / "data" / "math500.jsonl"
pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("import_problems", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args):
    err = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("import_problems", *map(str, args), stdout=StringIO(), stderr=err)
    return str(failure.value), err.getvalue()


def row(n, **overrides):
    record = {
        "problem": f"What is ${n}+1$?",
        "solution": f"It is ${n + 1}$.",
        "answer": str(n + 1),
        "subject": "Algebra",
        "level": 1,
        "unique_id": f"test/{n}.json",
    }
    record.update(overrides)
    return record


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r for r in records))
    return path


def test_math500_imports_500_problems_and_a_second_run_changes_nothing():
    out, _ = run(MATH500, "--source", "math500")
    assert "500 created, 0 updated, 0 unchanged" in out
    assert Problem.objects.filter(source="math500").count() == 500
    first = Problem.objects.get(source="math500", external_id="test/precalculus/807.json")
    assert first.reference_answer == r"\left( 3, \frac{\pi}{2} \right)"
    assert first.subject == "Precalculus" and first.level == 2
    stamp = first.updated_at

    out, _ = run(MATH500, "--source", "math500")
    assert "0 created, 0 updated, 500 unchanged" in out
    assert Problem.objects.count() == 500
    first.refresh_from_db()
    assert first.updated_at == stamp


def test_changed_rows_are_updated_and_counted(tmp_path):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(1), row(2)])
    run(path, "--source", "bank")
    write_jsonl(path, [row(1), row(2, answer="99"), row(3)])
    out, _ = run(path, "--source", "bank")
    assert "1 created, 1 updated, 1 unchanged" in out
    assert Problem.objects.get(external_id="test/2.json").reference_answer == "99"


def test_same_ids_under_another_source_are_separate_problems(tmp_path):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(1)])
    run(path, "--source", "one")
    run(path, "--source", "two")
    assert Problem.objects.filter(external_id="test/1.json").count() == 2


def test_dry_run_counts_but_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(1), row(2)])
    out, _ = run(path, "--source", "bank", "--dry-run")
    assert "Would import 2 of 2" in out and "2 created" in out
    assert Problem.objects.count() == 0


def test_every_bad_row_is_reported_with_line_and_field_and_nothing_is_imported(tmp_path):
    path = write_jsonl(
        tmp_path / "bank.jsonl",
        [
            row(1),
            row(2, answer=""),
            "{not json\n",
            row(4, level="hard"),
            "[1, 2]\n",
            row(1),
            {k: v for k, v in row(7).items() if k != "problem"},
        ],
    )
    message, err = run_failing(path, "--source", "bank")
    assert "nothing was imported" in message
    assert "line 2, field 'answer': missing or empty" in err
    assert "line 3: not valid JSON" in err
    assert "line 4, field 'level': expected a whole number" in err
    assert "line 5: expected a JSON object" in err
    assert "line 6, field 'unique_id': duplicate id 'test/1.json', first on line 1" in err
    assert "line 7, field 'problem': missing or empty" in err
    assert Problem.objects.count() == 0


def test_skip_invalid_imports_the_good_rows(tmp_path):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(1), row(2, answer=None), row(3)])
    out, err = run(path, "--source", "bank", "--skip-invalid")
    assert "line 2, field 'answer'" in err
    assert "2 created" in out and "1 skipped" in out
    assert sorted(Problem.objects.values_list("external_id", flat=True)) == [
        "test/1.json",
        "test/3.json",
    ]


def test_missing_file(tmp_path):
    message, _ = run_failing(tmp_path / "nope.jsonl", "--source", "bank")
    assert message == f"No such file: {tmp_path / 'nope.jsonl'}"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    message, _ = run_failing(path, "--source", "bank")
    assert "empty.jsonl is empty" in message


def test_file_of_blank_lines_has_no_rows(tmp_path):
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n  \n")
    message, _ = run_failing(path, "--source", "bank")
    assert "holds no rows" in message


def test_non_utf8_file_names_the_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    good = json.dumps(row(1)) + "\n"
    bad = json.dumps(row(2, problem="cafe"), ensure_ascii=False).replace("cafe", "café")
    path.write_bytes(good.encode("utf-8") + bad.encode("latin-1") + b"\n")
    message, _ = run_failing(path, "--source", "bank")
    assert "not UTF-8 text: line 2 has the byte 0xe9" in message
    assert Problem.objects.count() == 0


def test_unknown_extension_asks_for_format(tmp_path):
    path = write_jsonl(tmp_path / "bank.txt", [row(1)])
    message, _ = run_failing(path, "--source", "bank")
    assert "--format jsonl|csv" in message
    out, _ = run(path, "--source", "bank", "--format", "jsonl")
    assert "1 created" in out


def test_csv_with_the_same_columns(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text(
        "unique_id,problem,solution,answer,subject,level,origin\n"
        'c1,"What is $1+1$, really?",Two.,2,Algebra,Level 1,book\n'
        "c2,What is $2+2$?,Four.,,Algebra,2,book\n",
        encoding="utf-8",
    )
    message, err = run_failing(path, "--source", "csv")
    assert "line 3, field 'answer': missing or empty" in err

    out, _ = run(path, "--source", "csv", "--skip-invalid")
    problem = Problem.objects.get(source="csv", external_id="c1")
    assert problem.statement == "What is $1+1$, really?"
    assert problem.level == 1
    assert problem.metadata == {"origin": "book"}


def test_csv_without_a_required_column(tmp_path):
    path = tmp_path / "bank.csv"
    path.write_text("unique_id,problem\nc1,What?\n")
    message, _ = run_failing(path, "--source", "csv")
    assert "lacks the column(s) answer" in message


def test_extra_fields_are_kept_as_metadata(tmp_path):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(1, origin="olympiad", tags=["x"])])
    run(path, "--source", "bank")
    assert Problem.objects.get().metadata == {"origin": "olympiad", "tags": ["x"]}


def test_imports_in_batches(tmp_path, django_assert_max_num_queries):
    path = write_jsonl(tmp_path / "bank.jsonl", [row(n) for n in range(250)])
    # Per batch of 50: a read, the insert, the near-duplicate lookup and the inserts of the
    # signatures and their bands; then a few to regroup: not a query per row.
    with django_assert_max_num_queries(40):
        out, _ = run(path, "--source", "bank", "--batch-size", "50")
    assert "250 created" in out
    assert Problem.objects.count() == 250


def test_admins_import_by_upload_through_the_api(api_as, admin_user, reviewer_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    def upload(name, content, **extra):
        return {"file": SimpleUploadedFile(name, content), "source": "up", **extra}

    api = api_as(admin_user)
    good = "".join(json.dumps(row(n)) + "\n" for n in range(3)).encode()
    response = api.post("/api/problems/import/", upload("bank.jsonl", good), format="multipart")
    assert response.status_code == 200 and response.json()["created"] == 3
    bad = good + b'{"problem": "x"}\n'
    response = api.post("/api/problems/import/", upload("bank.jsonl", bad), format="multipart")
    assert response.status_code == 400
    assert "line 4, field 'answer': missing or empty" in response.json()["errors"]
    response = api.post("/api/problems/import/", upload("bank.exe", good), format="multipart")
    assert response.status_code == 400 and "jsonl or .csv" in str(response.json()["file"])
    response = api.post("/api/problems/import/", upload("e.csv", b""), format="multipart")
    assert response.status_code == 400
    refused = api_as(reviewer_user).post(
        "/api/problems/import/", upload("bank.jsonl", good), format="multipart"
    )
    assert refused.status_code == 403


def test_a_nul_character_is_a_line_numbered_error_and_nothing_is_written(tmp_path):
    path = write_jsonl(
        tmp_path / "bank.jsonl",
        [row(1), row(2, problem="a\u0000b"), row(3, origin={"note": "x\u0000"})],
    )
    message, err = run_failing(path, "--source", "bank")
    assert "line 2, field 'problem': contains a NUL character" in err
    assert "line 3, field 'origin': contains a NUL character" in err
    assert Problem.objects.count() == 0

    csv_path = tmp_path / "bank.csv"
    csv_path.write_bytes(b"unique_id,problem,answer\nc1,fine,1\nc2,bad\x00text,2\n")
    message, err = run_failing(csv_path, "--source", "csv")
    assert "line 3, field 'problem': contains a NUL character" in err
    assert Problem.objects.count() == 0


def test_a_csv_field_over_128_kb_is_refused_by_the_field_rule_with_its_line(tmp_path):
    path = tmp_path / "bank.csv"
    long = "x" * 200_000
    path.write_text(f"unique_id,problem,answer\nc1,fine,1\nc2,{long},2\nc3,also fine,3\n")
    message, err = run_failing(path, "--source", "csv")
    assert "line 3, field 'problem': longer than 100000 characters" in err
    assert Problem.objects.count() == 0

    out, err = run(path, "--source", "csv", "--skip-invalid")
    assert "2 created" in out and "1 skipped" in out


def test_deeply_nested_json_is_a_line_numbered_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    nested_meta = json.dumps(row(3, extra=[[[[[[[[[[[[[[[[[[[[[[["x"]]]]]]]]]]]]]]]]]]]]]]]))
    path = write_jsonl(
        tmp_path / "bank.jsonl",
        [row(1), '{"problem": ' + deep + "}\n", nested_meta + "\n"],
    )
    message, err = run_failing(path, "--source", "bank")
    assert "line 2: JSON nested too deeply to read" in err
    assert "line 3, field 'extra': nested deeper than 20 levels" in err
    assert Problem.objects.count() == 0


def test_api_import_errors_name_the_uploaded_file(api_as, admin_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    api = api_as(admin_user)
    for content in (b"unique_id,problem\nc1,What?\n", b"unique_id,problem,answer\nc1,\xff,1\n"):
        upload = {"file": SimpleUploadedFile("my-bank.csv", content), "source": "up"}
        response = api.post("/api/problems/import/", upload, format="multipart")
        assert response.status_code == 400
        message = str(response.json()["file"])
        assert "my-bank.csv" in message, message
        assert "tmp" not in message, message
    bad = b"unique_id,problem,answer\nc1,bad\x00text,2\n"
    upload = {"file": SimpleUploadedFile("nul.csv", bad), "source": "up"}
    response = api.post("/api/problems/import/", upload, format="multipart")
    assert response.status_code == 400
    assert "line 2, field 'problem': contains a NUL character" in str(response.json()["errors"])
