import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotator.roles import Role
from curation import services
from curation.exports import records
from tests.factories import AnnotationFactory, ProblemFactory, TraceFactory, UserFactory

pytestmark = pytest.mark.django_db


def approve(trace, reviewer, **edits):
    services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision="approve", **edits)


def reject(trace, reviewer):
    services.review_decide(trace_id=trace.pk, reviewer=reviewer, decision="reject",
                           reason="lost_step")  # fmt: skip


@pytest.fixture
def corpus(reviewer_user):
    """Six problems with an approved trace each; two also have a rejected trace; one
    approved trace is simulated and one is pending."""
    approved = []
    for n in range(6):
        annotation = AnnotationFactory(problem=ProblemFactory(external_id=f"q{n}"),
                                       status="submitted")  # fmt: skip
        trace = TraceFactory(annotation=annotation, thought=f"Hmm, problem {n}. Wait.",
                             solution=f"So \\boxed{{{n}}}.")  # fmt: skip
        approve(trace, reviewer_user)
        approved.append(trace)
        if n < 2:
            reject(TraceFactory(annotation=annotation, thought="Bad."), reviewer_user)
    approve(TraceFactory(is_simulated=True), reviewer_user)
    TraceFactory()
    return approved


def export(tmp_path, *args, name="out", stderr=None):
    out = StringIO()
    call_command("export_dataset", "--output", str(tmp_path / name), *args, stdout=out,
                 stderr=stderr or StringIO())  # fmt: skip
    return tmp_path / name


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_messages_format_with_think_tags_and_metadata(tmp_path, corpus, reviewer_user):
    username = corpus[0].annotation.annotator.username
    folder = export(tmp_path, "--format", "messages", "--system", "Think first.")
    rows = lines(folder / "train.jsonl")
    assert len(rows) == 6  # approved only; simulated and pending left out
    roles = [m["role"] for m in rows[0]["messages"]]
    assert roles == ["system", "user", "assistant"]
    assistant = rows[0]["messages"][2]["content"]
    assert assistant.startswith("<think>\nHmm, problem 0. Wait.\n</think>\n\nSo \\boxed{0}.")
    meta = rows[0]["metadata"]
    assert meta["problem_id"] == "q0" and meta["review"] == "approved"
    assert meta["annotator"].startswith("annotator-") and username not in meta["annotator"]
    assert (
        meta["reviewers"][0].startswith("reviewer-")
        and str(reviewer_user.pk) != meta["reviewers"][0]
    )


def test_sharegpt_still_style_and_dataset_info(tmp_path, corpus):
    folder = export(tmp_path, "--format", "sharegpt", "--style", "still")
    row = lines(folder / "train.jsonl")[0]
    assert [t["from"] for t in row["conversations"]] == ["human", "gpt"]
    assert row["conversations"][1]["value"].startswith("<|begin_of_thought|>")
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["journey_train"]["formatting"] == "sharegpt"
    assert info["journey_train"]["columns"]["messages"] == "conversations"


def test_alpaca_with_a_reasoning_field(tmp_path, corpus):
    folder = export(tmp_path, "--format", "alpaca", "--style", "reasoning-field")
    row = lines(folder / "train.jsonl")[0]
    assert set(row) >= {"instruction", "input", "output", "system", "reasoning"}
    assert row["output"] == "So \\boxed{0}." and row["reasoning"] == "Hmm, problem 0. Wait."


@pytest.mark.parametrize("fmt", ["messages", "sharegpt", "alpaca"])
def test_reasoning_field_is_for_datasets_users_and_its_card_example_runs(
    tmp_path, corpus, fmt, monkeypatch
):
    """LLaMA-Factory has no column for a reasoning key: no dataset_info.json that would
    train on the solution alone, a warning, and a card whose example puts the thought back."""
    err = StringIO()
    folder = export(tmp_path, "--format", fmt, "--style", "reasoning-field", stderr=err)
    assert not (folder / "dataset_info.json").exists()
    assert "dataset_info.json is not written" in err.getvalue()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert any("LLaMA-Factory has no column" in warning for warning in manifest["warnings"])
    card = (folder / "README.md").read_text()
    assert "## The reasoning field" in card
    example = card.split("```python\n")[1].split("```")[0]
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "cache")
    monkeypatch.chdir(folder)
    scope = {}
    exec(example, scope)  # noqa: S102 (the card's own code, as a reader would paste it)
    first = scope["data"][0]
    assert first["prompt"][-1] == {"role": "user", "content": first["prompt"][-1]["content"]}
    assert first["completion"][0]["content"] == (
        "<think>\nHmm, problem 0. Wait.\n</think>\n\nSo \\boxed{0}."
    )


def test_dpo_refuses_the_reasoning_field_that_would_drop_the_thought(tmp_path, corpus):
    with pytest.raises(CommandError, match="does not fit dpo"):
        export(tmp_path, "--format", "dpo", "--style", "reasoning-field")


def test_dpo_pairs_approved_and_rejected_traces_of_a_problem(tmp_path, corpus):
    folder = export(tmp_path, "--format", "dpo")
    rows = lines(folder / "train.jsonl")
    assert len(rows) == 2
    assert rows[0]["chosen"]["from"] == "gpt" and "Bad." in rows[0]["rejected"]["value"]
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["journey_train"]["ranking"] is True


def test_raw_format_keeps_every_field(tmp_path, corpus):
    row = lines(export(tmp_path, "--format", "raw") / "train.jsonl")[0]
    assert set(row) == {"trace", "annotation", "problem", "review"}
    assert row["problem"]["reference_answer"] and "checks" in row["trace"]
    assert row["annotation"]["annotator"].startswith("annotator-")


def test_every_approval_oldest_first_in_one_query_per_chunk(
    tmp_path, corpus, reviewer_user, settings, monkeypatch
):
    settings.REVIEW_APPROVALS_REQUIRED = 2
    second = UserFactory(username="second", role=Role.REVIEWER)
    annotation = AnnotationFactory(problem=ProblemFactory(external_id="q9"), status="submitted")
    trace = TraceFactory(annotation=annotation)
    approve(trace, reviewer_user)
    approve(trace, second)
    monkeypatch.setattr(records, "CHUNK", 3)
    with CaptureQueriesContext(connection) as queries:
        rows = lines(export(tmp_path, "--format", "messages") / "train.jsonl")
    assert len(rows) == 7
    assert rows[-1]["metadata"]["reviewers"] == [
        records.pseudonym("reviewer", reviewer_user.pk),
        records.pseudonym("reviewer", second.pk),
    ]
    approvals = [query for query in queries if "curation_reviewdecision" in query["sql"]]
    assert len(approvals) == 3  # 7 traces, 3 a chunk


def test_pseudonyms_follow_their_own_key_not_the_secret_key(settings):
    first = records.pseudonym("annotator", 1)
    assert first == records.pseudonym("annotator", 1) != records.pseudonym("reviewer", 1)
    settings.SECRET_KEY = "a-rotated-secret"
    assert records.pseudonym("annotator", 1) == first
    settings.PSEUDONYM_KEY = "another-pseudonym-key"
    assert records.pseudonym("annotator", 1) != first
    assert records.pseudonym("annotator", None) is None


def test_an_edit_is_what_gets_exported(tmp_path, reviewer_user):
    trace = TraceFactory()
    approve(trace, reviewer_user, edited_thought="Edited thought.")
    row = lines(export(tmp_path, "--format", "alpaca") / "train.jsonl")[0]
    assert row["output"].startswith("<think>\nEdited thought.\n</think>")


def test_same_database_same_bytes_and_a_manifest(tmp_path, corpus):
    first = export(tmp_path, "--format", "messages", "--split", "train=0.5,test=0.5", name="a")
    second = export(tmp_path, "--format", "messages", "--split", "train=0.5,test=0.5", name="b")
    for name in ("train.jsonl", "test.jsonl", "dataset_info.json", "README.md"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    manifest = json.loads((first / "manifest.json").read_text())
    assert sum(manifest["counts"].values()) == 6
    assert {f["name"] for f in manifest["files"]} == {"train.jsonl", "test.jsonl"}
    import hashlib

    for file in manifest["files"]:
        assert hashlib.sha256((first / file["name"]).read_bytes()).hexdigest() == file["sha256"]
    assert manifest["filters"]["include_simulated"] is False
    assert manifest["prompt_versions"] == ["journey v1"] and manifest["platform_version"]


def test_splits_never_share_a_problem(tmp_path, corpus):
    folder = export(tmp_path, "--format", "messages", "--status", "any", "--split",
                    "train=0.6,test=0.4", "--seed", "7")  # fmt: skip
    problems = {
        split: {r["metadata"]["problem_id"] for r in lines(folder / f"{split}.jsonl")}
        for split in ("train", "test")
    }
    assert problems["train"] and problems["test"]
    assert problems["train"].isdisjoint(problems["test"])


def test_simulated_traces_only_on_request(tmp_path, corpus):
    assert len(lines(export(tmp_path, "--format", "messages", "--include-simulated",
                            name="sim") / "train.jsonl")) == 7  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "messages", "--split", "train=0.9"], "add up to 1"),
        (["--format", "messages", "--split", "train"], "not name=fraction"),
        (["--format", "messages", "--since", "yesterday"], "must be a date"),
        (["--format", "messages", "--source", "nowhere"], "Nothing to export"),
    ],
)
def test_bad_options_give_clear_errors(tmp_path, corpus, args, message):
    with pytest.raises(CommandError, match=message):
        export(tmp_path, *args)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_nothing_to_export_on_the_demo_names_include_simulated(tmp_path, reviewer_user):
    """The demo's traces are all simulated: say so, and how to export them."""
    for _ in range(2):
        approve(TraceFactory(is_simulated=True), reviewer_user)
    with pytest.raises(CommandError) as refused:
        export(tmp_path, "--format", "messages")
    assert str(refused.value) == (
        "Nothing to export: no trace matches these filters. Of 2 approved traces, 2 are "
        "simulated and left out (pass --include-simulated to export them)."
    )


def test_nothing_to_export_counts_what_the_filters_left_out(tmp_path, corpus):
    with pytest.raises(CommandError) as refused:
        export(tmp_path, "--format", "messages", "--source", "nowhere", "--level", "2")
    assert "Of 7 approved traces, 7 are left out by the filters (source=\"nowhere\", " \
           "level=2)." in str(refused.value)  # fmt: skip
    with pytest.raises(CommandError) as refused:
        export(tmp_path, "--format", "messages", "--min-tokens", "1601")
    assert "1 is simulated and left out" not in str(refused.value)
    assert "7 are left out by the filters (min_tokens=1601)" in str(refused.value)


def test_dpo_with_no_pair_says_what_the_simulated_flag_left_out(tmp_path, reviewer_user):
    annotation = AnnotationFactory(status="submitted")
    approve(TraceFactory(annotation=annotation), reviewer_user)
    reject(TraceFactory(annotation=annotation, is_simulated=True), reviewer_user)
    with pytest.raises(CommandError, match="no problem has both an approved and a rejected") \
            as refused:  # fmt: skip
        export(tmp_path, "--format", "dpo")
    assert "Of 2 finished traces, 1 is simulated and left out (pass --include-simulated to " \
           "export it)." in str(refused.value)  # fmt: skip
    export(tmp_path, "--format", "dpo", "--include-simulated", name="pairs")


def seed_that_puts(problem_key, split, splits):
    from curation.exports.writer import split_of

    return next(seed for seed in range(200) if split_of(problem_key, splits, seed) == split)


def test_an_empty_train_split_is_left_out_with_a_warning_and_the_export_loads(
    tmp_path, reviewer_user, monkeypatch
):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    from datasets import load_dataset

    trace = TraceFactory(annotation=AnnotationFactory(problem=ProblemFactory(external_id="only"),
                                                      status="submitted"))  # fmt: skip
    approve(trace, reviewer_user)
    splits = {"train": 0.9, "test": 0.1}
    seed = seed_that_puts("test:only", "test", splits)
    export(tmp_path, "--format", "sharegpt")  # an earlier export that --force replaces
    err = StringIO()
    folder = export(tmp_path, "--format", "sharegpt", "--split", "train=0.9,test=0.1",
                    "--seed", str(seed), "--force", stderr=err)  # fmt: skip
    assert "Split 'train' is empty: it received none of the 1 problem exported" in err.getvalue()
    assert not (folder / "train.jsonl").exists()
    info = json.loads((folder / "dataset_info.json").read_text())
    assert list(info) == ["journey_test"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["empty_splits"] == ["train"] and manifest["counts"] == {"train": 0, "test": 1}
    assert [file["name"] for file in manifest["files"]] == ["test.jsonl"]
    assert "Split 'train' is empty" in (folder / "README.md").read_text()
    files = {name.removeprefix("journey_"): str(folder / spec["file_name"])
             for name, spec in info.items()}  # fmt: skip
    loaded = load_dataset("json", data_files=files, cache_dir=str(tmp_path / "cache"))
    assert {split: len(rows) for split, rows in loaded.items()} == {"test": 1}


def test_the_manifest_keeps_each_option_s_type(tmp_path, corpus):
    folder = export(tmp_path, "--format", "messages", "--checks-passed", "--min-tokens", "10",
                    "--since", "2020-01-31", "--seed", "3")  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    filters = manifest["filters"]
    assert filters["checks_passed"] is True and filters["include_simulated"] is False
    assert filters["min_tokens"] == 10 and filters["level"] is None
    # --since is the old name of --created-since: the manifest names the filter it applied.
    assert filters["created_since"] == "2020-01-31" and filters["created_until"] is None
    assert filters["status"] == "approved" and filters["source"] == ""
    assert manifest["seed"] == 3 and manifest["splits"] == {"train": 1.0}


def test_exports_in_the_checkout_are_ignored_by_git():
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not shutil.which("git") or not (root / ".git").exists():
        pytest.skip("not a git checkout")

    def ignored(path):
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=root).returncode == 0

    assert ignored("exports/v1/train.jsonl")
    assert not ignored("curation/exports/new_module.py")


def test_refuses_to_overwrite_without_force(tmp_path, corpus):
    export(tmp_path, "--format", "messages")
    with pytest.raises(CommandError, match="--force"):
        export(tmp_path, "--format", "messages")
    export(tmp_path, "--format", "messages", "--force")


def test_an_unwritable_folder_is_reported(tmp_path, corpus):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CommandError, match="Cannot create"):
        call_command("export_dataset", "--format", "messages", "--output", str(blocker / "sub"))


def test_an_interrupted_export_leaves_no_file(tmp_path, corpus, monkeypatch):
    calls = []

    def explode(trace, **kwargs):
        calls.append(trace)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return {"x": 1}

    monkeypatch.setattr(records, "record", explode)
    with pytest.raises(CommandError, match="Interrupted"):
        export(tmp_path, "--format", "messages")
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("fmt", ["messages", "sharegpt"])
def test_files_load_with_hugging_face_datasets(tmp_path, corpus, fmt, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    folder = export(tmp_path, "--format", fmt, "--system", "Think step by step.")
    dataset = load_dataset("json", data_files=str(folder / "train.jsonl"),
                           cache_dir=str(tmp_path / "cache"), split="train")  # fmt: skip
    assert len(dataset) == 6
    for row in dataset:
        if fmt == "messages":
            roles = [m["role"] for m in row["messages"] if m["role"] != "system"]
            assert roles == ["user", "assistant"] * (len(roles) // 2)
        else:
            speakers = [t["from"] for t in row["conversations"]]
            assert speakers == ["human", "gpt"] * (len(speakers) // 2)
            assert row["system"] == "Think step by step."
