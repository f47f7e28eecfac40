"""The export leaves out traces of benchmark problems (unless allowed) and, with --dedup,
near-duplicate traces of one problem; the manifest, the card and the command say how many."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.decontamination import normalize, problems_decontaminate, text_hash
from annotator.models import Benchmark, BenchmarkItem
from curation import services
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory

pytestmark = pytest.mark.django_db

IN_BENCH = (
    "Find the largest prime factor of $9991$, given that it equals a difference of two squares."
)
THOUGHT = (
    "Hmm, let me think about how to start. The number is close to a perfect square, so "
    "maybe a difference of squares helps here. Wait, one hundred squared is ten thousand, "
    "and ten thousand minus nine is exactly the number, so it factors as a product of a "
    "hundred and three and ninety seven. Let me check that both are prime, which they are."
)


def register(name, *texts):
    benchmark = Benchmark.objects.create(name=name)
    BenchmarkItem.objects.bulk_create(
        BenchmarkItem(benchmark=benchmark, line=n, text=t, normalized=normalize(t),
                      normalized_hash=text_hash(normalize(t)))
        for n, t in enumerate(texts, start=1)
    )  # fmt: skip
    problems_decontaminate(benchmarks=[benchmark])
    return benchmark


def approved_trace(reviewer, problem, thought=THOUGHT, solution="So \\boxed{103}."):
    annotation = AnnotationFactory(problem=problem, status="submitted")
    trace = TraceFactory(annotation=annotation, thought=thought, solution=solution)
    services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision="approve")
    return trace


@pytest.fixture
def corpus(reviewer_user):
    """Two traces of a benchmark problem (aime), one of a clean problem."""
    dirty = ProblemFactory(external_id="dirty", statement=IN_BENCH)
    clean = ProblemFactory(external_id="clean", statement="What is $2+3$?")
    approved_trace(reviewer_user, dirty)
    approved_trace(reviewer_user, dirty, thought="Another way: " + THOUGHT[::-1])
    approved_trace(reviewer_user, clean)
    register("aime", IN_BENCH)
    register("gpqa", "Which gas makes up most of the atmosphere of Titan?")
    return dirty, clean


def export(tmp_path, *args, name="out"):
    out = StringIO()
    call_command("export_dataset", "--format", "messages", "--output", str(tmp_path / name),
                 *args, stdout=out, stderr=StringIO())  # fmt: skip
    folder = tmp_path / name
    rows = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    manifest = json.loads((folder / "manifest.json").read_text())
    return rows, manifest, (folder / "README.md").read_text(), out.getvalue()


def test_contaminated_problems_are_left_out_by_default(tmp_path, corpus):
    rows, manifest, card, out = export(tmp_path)
    assert [row["metadata"]["problem_id"] for row in rows] == ["clean"]
    assert manifest["contamination"]["aime"] == {
        "left_out": 2, "kept": 0, "allowed": False, "items": 1, "holds_every_problem": False
    }  # fmt: skip
    assert manifest["contamination"]["gpqa"]["left_out"] == 0
    assert "- `aime` (1 items): 2 record(s) left out, 0 kept." in card
    assert "Benchmark aime: 2 record(s) of its problems left out." in out


def test_allow_contaminated_keeps_them_and_says_so(tmp_path, corpus):
    rows, manifest, card, out = export(tmp_path, "--allow-contaminated", "aime")
    assert sorted(row["metadata"]["problem_id"] for row in rows) == ["clean", "dirty", "dirty"]
    assert manifest["contamination"]["aime"]["kept"] == 2
    assert manifest["contamination"]["aime"]["left_out"] == 0
    assert manifest["filters"]["allow_contaminated"] == ["aime"]
    assert "2 kept (allowed: do not report aime results of a model trained on these)" in card
    assert "Benchmark aime: 2 record(s) of its problems kept (allowed)." in out


def test_an_unknown_benchmark_is_named(tmp_path, corpus):
    with pytest.raises(
        CommandError, match="Allow benchmarks: no benchmark named aime99; registered: aime, gpqa"
    ):
        export(tmp_path, "--allow-contaminated", "aime,aime99")


def test_nothing_left_but_contaminated_says_which_benchmark(tmp_path, reviewer_user):
    approved_trace(reviewer_user, ProblemFactory(statement=IN_BENCH))
    register("aime", IN_BENCH)
    with pytest.raises(CommandError) as failure:
        export(tmp_path)
    assert ("1 is of problems in a registered benchmark and left out (aime 1; allow aime to "
            "export them: --allow-contaminated aime") in str(failure.value)  # fmt: skip


def test_a_benchmark_holding_the_whole_bank_is_named_in_the_card(tmp_path, reviewer_user):
    approved_trace(reviewer_user, ProblemFactory(statement=IN_BENCH))
    register("math500", IN_BENCH)
    _, _, card, _ = export(tmp_path, "--allow-contaminated", "math500")
    assert "Every problem of the platform's bank is an item of `math500`" in card
    assert "the demo's problems are MATH-500 itself" in card


def test_dedup_keeps_one_of_near_duplicate_traces_of_a_problem(tmp_path, reviewer_user):
    problem, other = ProblemFactory(external_id="a"), ProblemFactory(external_id="b")
    first = approved_trace(reviewer_user, problem)
    approved_trace(reviewer_user, problem, thought=THOUGHT.replace("Hmm,", "Hmm, so"))
    approved_trace(reviewer_user, problem, thought="A different route: " + THOUGHT[::-1])
    approved_trace(reviewer_user, other)  # the same text, of another problem: kept
    rows, manifest, card, out = export(tmp_path)
    assert len(rows) == 4 and "dedup" not in manifest
    rows, manifest, card, out = export(tmp_path, "--dedup", name="dedup")
    assert [(r["metadata"]["problem_id"], r["metadata"]["trace_id"]) for r in rows][:1] == [
        ("a", first.pk)
    ]
    assert len(rows) == 3
    assert manifest["dedup"] == {"dropped": 1, "threshold": 0.8}
    assert "Dropped 1 near-duplicate trace(s) of the same problem." in out
    assert "Near-duplicate traces of the same problem left out: 1" in card


def test_dedup_of_dpo_pairs_each_side_once(tmp_path, reviewer_user):
    problem = ProblemFactory()
    approved_trace(reviewer_user, problem)
    for thought in ("Bad. " + THOUGHT, "Bad, " + THOUGHT):
        annotation = AnnotationFactory(problem=problem, status="submitted")
        trace = TraceFactory(annotation=annotation, thought=thought)
        services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="reject",
                               reason="lost_step")  # fmt: skip
    out = StringIO()
    call_command("export_dataset", "--format", "dpo", "--output", str(tmp_path / "dpo"),
                 "--dedup", stdout=out, stderr=StringIO())  # fmt: skip
    assert len((tmp_path / "dpo" / "train.jsonl").read_text().splitlines()) == 1
    assert json.loads((tmp_path / "dpo" / "manifest.json").read_text())["dedup"]["dropped"] == 1


@pytest.fixture
def exported(api_as, admin_user, settings, tmp_path, tasks_inline,
             django_capture_on_commit_callbacks):  # fmt: skip
    """Run an export through the API, worker inline; its details as the API answers them."""
    settings.VAR_DIR = tmp_path
    api = api_as(admin_user)

    def run(options: dict) -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post("/api/exports/", options, format="json")
        assert response.status_code == 202, response.json()
        return api.get(f"/api/exports/{response.json()['id']}/").json()

    return run


def test_the_api_leaves_out_allows_and_dedups(exported, corpus):
    detail = exported({"format": "messages"})
    assert detail["counts"] == {"train": 1}
    assert detail["manifest"]["contamination"]["aime"]["left_out"] == 2
    detail = exported({"format": "messages", "allow_contaminated": "aime", "dedup": True})
    assert detail["counts"] == {"train": 3}
    assert detail["manifest"]["contamination"]["aime"]["kept"] == 2
    assert detail["manifest"]["dedup"]["dropped"] == 0


def test_the_api_refuses_an_unknown_benchmark(api_as, admin_user, corpus):
    response = api_as(admin_user).post(
        "/api/exports/", {"format": "messages", "allow_contaminated": "mmlu"}, format="json"
    )
    assert response.status_code == 400
    assert "No benchmark named mmlu; registered: aime, gpqa." in json.dumps(response.json())


def test_the_export_page_names_the_benchmarks_and_a_bank_that_is_one(
    client_as, admin_user, reviewer_user
):
    ProblemFactory(statement=IN_BENCH)
    register("math500", IN_BENCH)
    page = client_as(admin_user).get("/exports/").content.decode()
    assert "<strong>math500</strong>: 1 item; 1 problem of the bank in it." in page
    assert "the demo's problems are MATH-500 itself" in page
    assert 'name="allow_contaminated"' in page and 'name="dedup"' in page
