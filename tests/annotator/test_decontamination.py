import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.decontamination import BenchmarkIndex, normalize
from annotator.models import Benchmark, Contamination, Problem
from tests.factories import ProblemFactory

pytestmark = pytest.mark.django_db

AIME_1 = (
    "Let $N$ be the greatest four-digit positive integer with the property that whenever one "
    "of its digits is changed to $1$, the resulting number is divisible by $7$. Find $N$."
)
AIME_2 = (
    "Every morning Aya goes for a $9$-kilometer-long walk and stops at a coffee shop "
    "afterwards. How many minutes does the walk take her?"
)
# Shares 12 words in a row with AIME_1 ("whenever one ... resulting number"): 5 8-grams.
PARAPHRASE = (
    "Consider five-digit integers instead: whenever one of its digits is changed to $1$, the "
    "resulting number must be a multiple of $13$. How many such integers exist?"
)
# AIME_2 with other spacing, case and LaTeX spacing: the same problem.
RESPACED = (
    "every  morning aya goes for a $9$ - kilometer-long walk\nand stops at a coffee shop "
    "afterwards.  How many minutes does the walk take\\, her?"
)
CLEAN = [
    "Find the greatest common divisor of $84$ and $126$.",
    "How many positive divisors does $6!$ have? Find the number of divisors.",
    "Let $x$ be a real number such that $x + 1/x = 3$. Find $x^2 + 1/x^2$.",
    "Find the number of positive integers whenever one digit is odd.",  # 3 words in common
]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" if isinstance(r, dict) else r for r in records))
    return path


def benchmark_file(tmp_path, name="aime.jsonl"):
    return write_jsonl(tmp_path / name, [
        {"problem": AIME_1, "answer": "5694", "id": "2024-I-1"},
        {"problem": AIME_2, "answer": "204", "id": "2024-I-2"},
    ])  # fmt: skip


def problems_file(tmp_path, statements):
    return write_jsonl(tmp_path / "bank.jsonl", [
        {"problem": text, "answer": "1", "unique_id": f"bank/{n}"}
        for n, text in enumerate(statements)
    ])  # fmt: skip


def add(*args):
    out, err = StringIO(), StringIO()
    call_command("benchmarks_add", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def import_problems(path, source="bank"):
    out = StringIO()
    call_command("import_problems", str(path), "--source", source, stdout=out, stderr=StringIO())
    return out.getvalue()


def contamination_of(external_id):
    return Contamination.objects.select_related("benchmark", "item").get(
        problem__external_id=external_id
    )


def test_normalization_ignores_spacing_case_and_latex_spacing_but_keeps_digits():
    assert normalize("Find  the\nRemainder") == normalize("find the remainder")
    assert normalize("$x + 1 = 2$") == normalize("$x+1=2$")
    assert normalize(r"$a\,b \quad c$") == normalize("$a b c$")
    assert normalize("$2^{10}$") != normalize("$2^{11}$")


def test_clean_problems_are_not_marked(tmp_path):
    add(benchmark_file(tmp_path), "--name", "aime24")
    out = import_problems(problems_file(tmp_path, CLEAN))
    assert Problem.objects.count() == len(CLEAN)
    assert not Contamination.objects.exists()
    assert "overlap benchmark" not in out


def test_benchmark_added_then_import_marks_overlap_and_exact_copy(tmp_path):
    out, _ = add(benchmark_file(tmp_path), "--name", "aime24")
    assert "Registered benchmark 'aime24': 2 item(s); 0 problem(s)" in out
    out = import_problems(problems_file(tmp_path, [PARAPHRASE, RESPACED, CLEAN[0]]))
    assert "2 incoming row(s) overlap benchmark 'aime24'." in out
    paraphrase = contamination_of("bank/0")
    assert paraphrase.benchmark.name == "aime24"
    assert paraphrase.item.external_id == "2024-I-1"
    assert not paraphrase.exact
    assert "of its digits is changed to 1 the" in paraphrase.ngrams
    assert paraphrase.overlap == 5
    assert paraphrase.ngram_size == 8
    respaced = contamination_of("bank/1")
    assert respaced.exact and respaced.item.external_id == "2024-I-2"
    assert not Contamination.objects.filter(problem__external_id="bank/2").exists()


def test_import_then_benchmark_added_marks_the_problems_already_there(tmp_path):
    import_problems(problems_file(tmp_path, [PARAPHRASE, *CLEAN]))
    assert not Contamination.objects.exists()
    out, _ = add(benchmark_file(tmp_path), "--name", "aime24")
    assert "1 problem(s) of the bank overlap it." in out
    assert contamination_of("bank/0").item.external_id == "2024-I-1"
    assert Contamination.objects.count() == 1


def test_ngram_size_is_a_setting(tmp_path, settings):
    settings.DECONTAMINATION_NGRAM = 13  # the paraphrase shares 12 words in a row, not 13
    add(benchmark_file(tmp_path), "--name", "aime24")
    import_problems(problems_file(tmp_path, [PARAPHRASE]))
    assert not Contamination.objects.exists()


def test_changed_statement_is_checked_again_on_reimport(tmp_path):
    add(benchmark_file(tmp_path), "--name", "aime24")
    import_problems(problems_file(tmp_path, [PARAPHRASE]))
    assert Contamination.objects.count() == 1
    import_problems(problems_file(tmp_path, [CLEAN[1]]))
    assert not Contamination.objects.exists()


def test_csv_with_another_field_name(tmp_path):
    path = tmp_path / "gpqa.csv"
    path.write_text(f'question,answer\n"{AIME_2}",204\n')
    out, _ = add(path, "--name", "gpqa", "--field", "question")
    assert "1 item(s)" in out
    problem = ProblemFactory(statement=RESPACED)
    call_command("decontaminate", stdout=StringIO())
    assert Contamination.objects.get().problem == problem


def test_csv_without_the_field_names_the_columns(tmp_path):
    path = tmp_path / "gpqa.csv"
    path.write_text("question,answer\nWhat?,1\n")
    with pytest.raises(CommandError, match="no column 'problem'.*question, answer.*--field"):
        add(path, "--name", "gpqa")


def test_bad_lines_are_named_and_nothing_is_stored(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [
        {"problem": AIME_1}, "{not json\n", {"question": "x"}, {"problem": 7}, "[1]\n",
    ])  # fmt: skip
    err = StringIO()
    with pytest.raises(CommandError, match="4 bad line"):
        call_command("benchmarks_add", str(path), "--name", "bad", stdout=StringIO(), stderr=err)
    lines = err.getvalue()
    assert "line 2: not valid JSON" in lines
    assert "line 3, field 'problem': missing or empty" in lines
    assert "line 4, field 'problem': expected text, got int" in lines
    assert "line 5: expected a JSON object" in lines
    assert not Benchmark.objects.exists()


def test_a_name_is_registered_once_unless_replaced(tmp_path):
    add(benchmark_file(tmp_path), "--name", "aime24")
    with pytest.raises(CommandError, match="registered already; pass --replace"):
        add(benchmark_file(tmp_path), "--name", "aime24")
    ProblemFactory(statement=AIME_1)
    path = write_jsonl(tmp_path / "new.jsonl", [{"problem": AIME_2}])
    out, _ = add(path, "--name", "aime24", "--replace")
    assert "Replaced benchmark 'aime24': 1 item(s); 0 problem(s)" in out
    with pytest.raises(CommandError, match="no comma"):
        add(path, "--name", "aime,24")


def test_the_index_points_at_the_item_a_problem_overlaps(tmp_path):
    """Of 300 items that share most of their words, the one the problem quotes."""
    path = write_jsonl(tmp_path / "many.jsonl", [
        {"problem": f"Item number {n} asks for the sum of the first {n} odd numbers squared."}
        for n in range(300)
    ])  # fmt: skip
    add(path, "--name", "many")
    index = BenchmarkIndex()
    (match,) = index.match("Then item number 123 asks for the sum of the first 123 odd numbers")
    assert Benchmark.objects.get().items.get(pk=match.item_id).line == 124
