"""Step ratings exported for process reward models: TRL's stepwise supervision and
PRM800K-like lines, loaded with Hugging Face datasets and checked against what is stored."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotator.models import WorkspaceSettings
from curation import services
from curation.models import StepRating, TraceStep
from curation.ratings.steps import trace_steps_split
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


def _trace(n: int, thought: str, reviewer):
    annotation = AnnotationFactory(problem=ProblemFactory(external_id=f"q{n}",
                                                          reference_answer=str(n)),
                                   status="submitted")  # fmt: skip
    trace = TraceFactory(annotation=annotation, thought=thought)
    services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision="approve")
    trace_steps_split(trace_id=trace.pk)
    return trace


def _rate(trace, rater, ratings):
    steps = TraceStep.objects.filter(trace=trace, retired_at__isnull=True).order_by("number")
    for step, (value, tag) in zip(steps, ratings, strict=False):
        StepRating.objects.create(step=step, rater=rater, correctness=value, faithfulness=tag)


@pytest.fixture
def rated(reviewer_user, admin_user):
    """q0: three steps rated +1, 0, +1 by two reviewers (one found step 3 wrong); q1: rated up
    to its first wrong step; q2: no rating at all."""
    WorkspaceSettings.objects.update_or_create(pk=1, defaults={"raters_per_trace": 2})
    other = UserFactory(username="second", role="reviewer")
    full = _trace(0, "Try 3.\n\nHmm, 3+3=6.\n\nSo x = 4.", admin_user)
    _rate(full, reviewer_user, [(1, "faithful"), (0, "faithful"), (1, "faithful")])
    _rate(full, other, [(1, "faithful"), (0, ""), (-1, "invented")])
    stopped = _trace(1, "Guess 5.\n\n5+5=11.\n\nNo: 10.", admin_user)
    _rate(stopped, reviewer_user, [(1, "faithful"), (-1, "early_fix")])
    _trace(2, "Nothing rated.\n\nStill nothing.", admin_user)
    return full, stopped


def export(tmp_path, *args):
    folder = tmp_path / "out"
    call_command("export_dataset", "--output", str(folder), *args, stdout=StringIO(),
                 stderr=StringIO())  # fmt: skip
    return folder


def _load(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    return load_dataset("json", data_files=str(folder / "train.jsonl"),
                        cache_dir=str(tmp_path / "cache"), split="train")  # fmt: skip


def test_prm_is_trls_stepwise_supervision_checked_field_by_field(tmp_path, rated, monkeypatch):
    full, stopped = rated
    folder = export(tmp_path, "--format", "prm")
    data = _load(folder, tmp_path, monkeypatch)
    assert set(data.column_names) == {"prompt", "completions", "labels", "metadata"}
    assert len(data) == 2  # the unrated trace is left out
    rows = {row["metadata"]["trace_id"]: row for row in data}
    first = rows[full.pk]
    assert first["prompt"] == full.annotation.problem.statement
    assert first["completions"] == ["Try 3.", "Hmm, 3+3=6.", "So x = 4."]
    # Lowest rating among the two reviewers: +1, 0, -1; only +1 is positive by default.
    assert first["labels"] == [True, False, False]
    second = rows[stopped.pk]
    assert second["completions"] == ["Guess 5.", "5+5=11."]  # up to the first wrong step
    assert second["labels"] == [True, False]
    assert second["metadata"]["steps"] == 3 and second["metadata"]["steps_labelled"] == 2
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["labels"] == "human" and manifest["unlabelled"] == 1
    assert "1 of 3 traces have no step with human ratings" in manifest["warnings"][0]
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["journey_train"]["file_name"] == "train.jsonl"
    assert "PRMTrainer" in (folder / "README.md").read_text()


def test_a_neutral_step_can_count_as_positive(tmp_path, rated, monkeypatch):
    full, _ = rated
    folder = export(tmp_path, "--format", "prm", "--neutral", "positive")
    rows = {row["metadata"]["trace_id"]: row for row in _load(folder, tmp_path, monkeypatch)}
    assert rows[full.pk]["labels"] == [True, True, False]


def test_prm800k_lines_carry_every_step_its_rating_and_tag(tmp_path, rated, monkeypatch):
    full, stopped = rated
    folder = export(tmp_path, "--format", "prm800k")
    rows = {row["metadata"]["trace_id"]: row for row in _load(folder, tmp_path, monkeypatch)}
    first = rows[full.pk]
    assert [s["rating"] for s in first["steps"]] == [1, 0, -1]
    assert [s["faithfulness"] for s in first["steps"]] == ["faithful", "faithful", "invented"]
    assert first["finish_reason"] == "solution" and first["ground_truth_answer"] == "0"
    second = rows[stopped.pk]
    assert [s["rating"] for s in second["steps"]] == [1, -1, None]
    assert [s["faithfulness"] for s in second["steps"]] == ["faithful", "early_fix", None]
    assert second["finish_reason"] == "found_error"
    assert [s["text"] for s in second["steps"]] == ["Guess 5.", "5+5=11.", "No: 10."]


def test_the_same_ratings_give_the_same_bytes(tmp_path, rated):
    first = (export(tmp_path, "--format", "prm") / "train.jsonl").read_bytes()
    again = (export(tmp_path, "--format", "prm", "--force") / "train.jsonl").read_bytes()
    assert first == again


def test_nothing_rated_says_so(tmp_path, reviewer_user):
    _trace(5, "One.\n\nTwo.", reviewer_user)
    with pytest.raises(CommandError, match="none of the 1 traces has a step with human ratings"):
        export(tmp_path, "--format", "prm")


def _archive_lines(export_row, name="train.jsonl") -> list[dict]:
    import zipfile

    with zipfile.ZipFile(export_row.archive) as archive:
        text = archive.read(f"export-{export_row.pk}/{name}").decode()
    return [json.loads(line) for line in text.splitlines()]


def test_the_exports_page_offers_prm_with_its_labels_and_writes_what_the_command_writes(
    client_as, admin_user, rated, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from curation.models import Export

    settings.VAR_DIR = tmp_path
    client = client_as(admin_user)
    page = client.get("/exports/").content.decode()
    for option in ("prm", "prm800k", "human-else-judge", "positive"):
        assert f"<option>{option}</option>" in page
    with django_capture_on_commit_callbacks(execute=True):
        form = {"format": "prm", "labels": "human", "neutral": "positive", "split": "train=1"}
        response = client.post("/exports/", form)
    assert response.status_code == 302
    made = Export.objects.get()
    assert made.status == "succeeded", made.error
    assert made.filters["labels"] == "human" and made.filters["neutral"] == "positive"
    from_command = export(tmp_path, "--format", "prm", "--neutral", "positive")
    assert _archive_lines(made) == [
        json.loads(line) for line in (from_command / "train.jsonl").read_text().splitlines()
    ]
    assert _archive_lines(made)[0]["labels"][:2] == [True, True]  # the 0 step counts positive
    listed = client.get("/exports/").content.decode()
    assert "labels: human, 0 is positive" in listed


def test_the_api_exports_judge_labels_and_refuses_unknown_ones(
    api_as, admin_user, rated, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from curation.models import Export

    settings.VAR_DIR = tmp_path
    api = api_as(admin_user)
    refused = api.post("/api/exports/", {"format": "prm", "labels": "crowd"}, format="json")
    assert refused.status_code == 400 and "labels" in refused.json()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/exports/", {"format": "prm800k", "labels": "judge"},
                            format="json")  # fmt: skip
    assert response.status_code == 202
    made = Export.objects.get(pk=response.json()["id"])
    assert made.status == "failed" and "judge ratings" in made.error  # nothing was judged
    with django_capture_on_commit_callbacks(execute=True):
        plain = api.post("/api/exports/", {"format": "messages", "labels": "judge"},
                         format="json")  # fmt: skip
    assert "labels" not in Export.objects.get(pk=plain.json()["id"]).filters
