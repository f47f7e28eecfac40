"""export_dataset --source rollouts: DPO pairs of a correct and an incorrect sample of one
campaign, rejection-sampled SFT, and traces and rollouts in one export, loaded by datasets."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from curation import services
from tests.curation.test_export_hygiene import IN_BENCH, register
from tests.factories import (
    AnnotationFactory,
    CampaignFactory,
    EndpointFactory,
    ProblemFactory,
    SampleFactory,
    TraceFactory,
)

pytestmark = pytest.mark.django_db


def export(tmp_path, *args, name="out"):
    out = StringIO()
    call_command("export_dataset", "--output", str(tmp_path / name), *args, stdout=out,
                 stderr=StringIO())  # fmt: skip
    return tmp_path / name


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def samples(campaign, problem, verdicts, tokens=None):
    """One sample per verdict ('correct', 'incorrect', ...), its thought naming its order."""
    made = []
    for n, verdict in enumerate(verdicts):
        answer = problem.reference_answer if verdict == "correct" else f"wrong-{n}"
        made.append(SampleFactory(
            campaign=campaign, problem=problem, sample_index=n, verdict=verdict, answer=answer,
            thought=f"Sample {n} of {problem.external_id}. Wait, let me check.",
            completion_tokens=tokens[n] if tokens else 1000 + n,
        ))  # fmt: skip
    return made


@pytest.fixture
def rounds():
    """Two problems sampled by a campaign of model-a: r0 with 4 correct and 4 incorrect
    samples (and an unverified one), r1 with only correct ones; a second campaign of
    model-b samples r0 with correct samples only."""
    first = CampaignFactory(name="round-a", endpoint=EndpointFactory(name="a", model="model-a"))
    second = CampaignFactory(name="round-b", endpoint=EndpointFactory(name="b", model="model-b"))
    r0 = ProblemFactory(external_id="r0", reference_answer="7")
    r1 = ProblemFactory(external_id="r1", reference_answer="9")
    made = samples(first, r0, ["correct", "incorrect"] * 4 + ["unverified"])
    made += samples(first, r1, ["correct"] * 3)
    made += [SampleFactory(campaign=second, problem=r0, sample_index=n) for n in range(3)]
    return first, second, made


def pairs_of(folder):
    return [(row["metadata"]["chosen"]["sample_id"], row["metadata"]["rejected"]["sample_id"])
            for row in lines(folder / "train.jsonl")]  # fmt: skip


def test_dpo_pairs_a_correct_and_an_incorrect_sample_of_the_same_campaign(tmp_path, rounds):
    first, second, made = rounds
    by_id = {sample.pk: sample for sample in made}
    folder = export(tmp_path, "--source", "rollouts", "--format", "dpo")
    rows = lines(folder / "train.jsonl")
    assert len(rows) == 5  # the default: 5 pairs of r0; r1 has no incorrect sample
    for row in rows:
        meta = row["metadata"]
        chosen, rejected = by_id[meta["chosen"]["sample_id"]], by_id[meta["rejected"]["sample_id"]]
        assert chosen.verdict == "correct" and rejected.verdict == "incorrect"
        assert chosen.campaign == rejected.campaign == first  # never across campaigns
        assert meta["campaign"] == "round-a" and meta["problem_id"] == "r0"
        assert meta["chosen"]["model"] == meta["rejected"]["model"] == "model-a"
        assert meta["chosen"]["verification"] == {"verdict": "correct", "answer": "7",
                                                  "reference": "7"}  # fmt: skip
        assert meta["rejected"]["verification"]["verdict"] == "incorrect"
        assert row["source"] == "rollout"
        assert row["conversations"] == [{"from": "human", "value": chosen.problem.statement}]
        assert row["chosen"]["value"].startswith(f"<think>\n{chosen.thought}\n</think>")
        assert row["rejected"]["value"].startswith(f"<think>\n{rejected.thought}")
    # Four pairs of eight different samples before any sample is used twice.
    first_four = [sample for pair in pairs_of(folder)[:4] for sample in pair]
    assert len(set(first_four)) == 8
    info = json.loads((folder / "dataset_info.json").read_text())
    assert info["journey_train"]["ranking"] is True
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sources"] == {"rollout": 5}
    assert manifest["rollouts"]["pairs_per_problem"] == 5
    assert manifest["models"] == ["model-a"]


def test_dpo_pairs_are_the_same_for_a_seed_and_change_with_it(tmp_path, rounds):
    args = ["--source", "rollouts", "--format", "dpo", "--pairs-per-problem", "3"]
    one = export(tmp_path, *args, "--seed", "1", name="one")
    again = export(tmp_path, *args, "--seed", "1", name="again")
    assert (one / "train.jsonl").read_bytes() == (again / "train.jsonl").read_bytes()
    assert len(pairs_of(one)) == 3
    others = [set(pairs_of(export(tmp_path, *args, "--seed", str(seed), name=f"s{seed}")))
              for seed in range(2, 6)]  # fmt: skip
    assert any(other != set(pairs_of(one)) for other in others)


def test_campaign_selects_by_name_or_id(tmp_path, rounds):
    first, second, _ = rounds
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages",
                    "--campaign", "round-b")  # fmt: skip
    assert {row["metadata"]["campaign"] for row in lines(folder / "train.jsonl")} == {"round-b"}
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages",
                    "--campaign", str(first.pk), name="by-id")  # fmt: skip
    assert {row["metadata"]["campaign"] for row in lines(folder / "train.jsonl")} == {"round-a"}


def test_sft_keeps_correct_samples_only_the_shortest_first(tmp_path):
    campaign = CampaignFactory()
    problem = ProblemFactory(external_id="s0", reference_answer="5")
    samples(campaign, problem, ["correct", "incorrect", "correct", "correct", "unverified"],
            tokens=[900, 100, 300, 600, 50])  # fmt: skip
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages",
                    "--samples-per-problem", "2")  # fmt: skip
    rows = lines(folder / "train.jsonl")
    assert [row["metadata"]["completion_tokens"] for row in rows] == [300, 600]
    assert {row["metadata"]["verification"]["verdict"] for row in rows} == {"correct"}
    assert [m["role"] for m in rows[0]["messages"]] == ["user", "assistant"]
    assert rows[0]["messages"][1]["content"].startswith("<think>\nSample 2 of s0.")
    # The default: one sample per problem, the shortest correct one.
    rows = lines(export(tmp_path, "--source", "rollouts", "--format", "alpaca",
                        name="one") / "train.jsonl")  # fmt: skip
    assert len(rows) == 1 and rows[0]["metadata"]["completion_tokens"] == 300
    assert rows[0]["instruction"] == problem.statement and rows[0]["source"] == "rollout"


def test_pick_random_draws_with_the_seed(tmp_path):
    campaign = CampaignFactory()
    problem = ProblemFactory(external_id="d0")
    samples(campaign, problem, ["correct"] * 8 + ["incorrect"] * 2)
    args = ["--source", "rollouts", "--format", "sharegpt", "--pick", "random",
            "--samples-per-problem", "2"]  # fmt: skip

    def drawn(seed, name):
        folder = export(tmp_path, *args, "--seed", str(seed), name=name)
        return [row["metadata"]["sample_id"] for row in lines(folder / "train.jsonl")]

    first = drawn(0, "a")
    assert first == drawn(0, "b") and len(first) == 2
    shortest = [row["metadata"]["sample_id"] for row in lines(export(
        tmp_path, "--source", "rollouts", "--format", "sharegpt", "--samples-per-problem", "2",
        name="short") / "train.jsonl")]  # fmt: skip
    draws = [drawn(seed, f"s{seed}") for seed in range(1, 8)]
    assert any(draw != first for draw in draws)
    assert any(draw != shortest for draw in [first, *draws])  # random is not shortest-first


@pytest.fixture
def mixed(reviewer_user):
    """Eight problems, each with an approved trace and two correct samples."""
    campaign = CampaignFactory(name="mix")
    for n in range(8):
        problem = ProblemFactory(external_id=f"m{n}")
        trace = TraceFactory(annotation=AnnotationFactory(problem=problem, status="submitted"))
        services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
        samples(campaign, problem, ["correct", "correct", "incorrect"])


def test_mixed_export_records_the_source_and_splits_by_problem(tmp_path, mixed):
    folder = export(tmp_path, "--source", "traces,rollouts", "--format", "messages",
                    "--samples-per-problem", "2", "--split", "train=0.5,test=0.5",
                    "--seed", "3")  # fmt: skip
    splits = {name: lines(folder / f"{name}.jsonl") for name in ("train", "test")}
    every = splits["train"] + splits["test"]
    assert sorted(row["source"] for row in every) == ["rollout"] * 16 + ["trace"] * 8
    problems = {name: {row["metadata"]["problem_id"] for row in rows}
                for name, rows in splits.items()}  # fmt: skip
    assert problems["train"] and problems["test"]
    assert problems["train"].isdisjoint(problems["test"])
    for rows in splits.values():  # each problem's traces and samples went to the same split
        by_problem = {}
        for row in rows:
            by_problem.setdefault(row["metadata"]["problem_id"], set()).add(row["source"])
        assert all(found == {"trace", "rollout"} for found in by_problem.values())
    assert len({tuple(row["metadata"]) for row in every}) == 1  # one schema for datasets
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sources"] == {"trace": 8, "rollout": 16}
    assert "## Rollout samples" in (folder / "README.md").read_text()


@pytest.mark.parametrize(
    ("source", "fmt", "extra"),
    [
        ("traces,rollouts", "messages", []),
        ("traces,rollouts", "sharegpt", ["--style", "still"]),
        ("traces,rollouts", "alpaca", ["--style", "reasoning-field"]),
        ("rollouts", "dpo", []),
        ("rollouts", "dpo", ["--pair-layout", "trl", "--system", "Think."]),
    ],
)
def test_files_load_with_hugging_face_datasets(tmp_path, mixed, monkeypatch, source, fmt, extra):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    folder = export(tmp_path, "--source", source, "--format", fmt, *extra)
    data = load_dataset("json", data_files=str(folder / "train.jsonl"),
                        cache_dir=str(tmp_path / "cache"), split="train")  # fmt: skip
    expected = 16  # one trace and one sample, or two pairs (2 correct x 1 incorrect)
    assert len(data) == expected and set(data["source"]) <= {"trace", "rollout"}
    if "trl" in extra:
        row = data[0]
        statement = row["prompt"][1]["content"]
        assert row["prompt"] == [{"role": "system", "content": "Think."},
                                 {"role": "user", "content": statement}]  # fmt: skip
        assert row["chosen"][0]["role"] == row["rejected"][0]["role"] == "assistant"
        assert not (folder / "dataset_info.json").exists()
    elif fmt == "dpo":
        assert data[0]["chosen"]["from"] == "gpt"


def test_benchmark_problems_samples_are_left_out_unless_allowed(tmp_path):
    campaign = CampaignFactory()
    dirty = ProblemFactory(external_id="dirty", statement=IN_BENCH)
    clean = ProblemFactory(external_id="clean", statement="What is $2+3$?")
    samples(campaign, dirty, ["correct"])
    samples(campaign, clean, ["correct"])
    register("aime", IN_BENCH)
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages")
    assert [row["metadata"]["problem_id"] for row in lines(folder / "train.jsonl")] == ["clean"]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["contamination"]["aime"]["left_out"] == 1
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages",
                    "--allow-contaminated", "aime", name="allowed")  # fmt: skip
    assert len(lines(folder / "train.jsonl")) == 2


def test_simulated_samples_only_on_request(tmp_path):
    SampleFactory(is_simulated=True)
    with pytest.raises(CommandError, match="1 is simulated and left out"):
        export(tmp_path, "--source", "rollouts", "--format", "messages")
    folder = export(tmp_path, "--source", "rollouts", "--format", "messages",
                    "--include-simulated", name="sim")  # fmt: skip
    assert len(lines(folder / "train.jsonl")) == 1


def test_source_keeps_meaning_the_problems_source_otherwise(tmp_path, reviewer_user):
    for source in ("bank", "other"):
        trace = TraceFactory(annotation=AnnotationFactory(
            problem=ProblemFactory(source=source), status="submitted"))  # fmt: skip
        services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision="approve")
    old = lines(export(tmp_path, "--format", "messages", "--source", "bank") / "train.jsonl")
    new = lines(export(tmp_path, "--format", "messages", "--problem-source", "bank",
                       name="new") / "train.jsonl")  # fmt: skip
    assert [row["metadata"]["problem_source"] for row in old] == ["bank"]
    assert old == new
    with pytest.raises(CommandError, match="--problem-source"):
        export(tmp_path, "--format", "messages", "--source", "bank", "--problem-source",
               "other", name="both")  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "rollouts", "--format", "prm"], "--format prm does not apply to --source"),
        (["--source", "rollouts", "--format", "raw"], "--format raw does not apply"),
        (["--source", "rollouts", "--format", "dpo", "--campaign", "nope"],
         "--campaign: no campaign named or numbered nope"),
        (["--format", "messages", "--campaign", "round-a"], "--campaign applies to rollout"),
        (["--source", "rollouts", "--format", "messages", "--pairs-per-problem", "2"],
         "--pairs-per-problem applies to --format dpo"),
        (["--source", "rollouts", "--format", "dpo", "--pick", "random"],
         "--pick applies to --format messages"),
        (["--format", "messages", "--samples-per-problem", "2"],
         "--samples-per-problem applies to rollout samples"),
        (["--source", "rollouts", "--format", "dpo", "--pairs-per-problem", "0"],
         "--pairs-per-problem must be a whole number of at least 1"),
        (["--source", "rollouts", "--format", "messages", "--status", "any"],
         "--status filters traces"),
        (["--source", "rollouts", "--format", "messages", "--model", "m", "--min-tokens", "9"],
         "--model, --min-tokens filter traces, not rollout samples"),
        (["--source", "rollouts", "--format", "messages", "--pair-layout", "trl"],
         "--pair-layout applies to --format dpo"),
    ],
)  # fmt: skip
def test_bad_combinations_name_the_option(tmp_path, rounds, args, message):
    with pytest.raises(CommandError, match=message):
        export(tmp_path, *args)
    assert not (tmp_path / "out" / "train.jsonl").exists()


def test_nothing_to_pair_says_why(tmp_path):
    samples(CampaignFactory(), ProblemFactory(), ["correct", "correct", "unverified"])
    with pytest.raises(CommandError, match="no problem has both a correct and an incorrect"):
        export(tmp_path, "--source", "rollouts", "--format", "dpo")


def test_mixed_dpo_pairs_traces_and_samples_with_one_schema(tmp_path, mixed, reviewer_user,
                                                            monkeypatch):  # fmt: skip
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    from datasets import load_dataset

    annotation = AnnotationFactory(problem=ProblemFactory(external_id="m0x"), status="submitted")
    for decision, thought in (("approve", "Good."), ("reject", "Bad.")):
        trace = TraceFactory(annotation=annotation, thought=thought)
        services.review_decide(trace_id=trace.pk, reviewer=reviewer_user, decision=decision,
                               reason="lost_step" if decision == "reject" else "")  # fmt: skip
    folder = export(tmp_path, "--source", "traces,rollouts", "--format", "dpo")
    rows = lines(folder / "train.jsonl")
    assert sorted(row["source"] for row in rows) == ["rollout"] * 16 + ["trace"]
    assert len({tuple(row["metadata"]) for row in rows}) == 1
    trace_pair = next(row for row in rows if row["source"] == "trace")
    assert "Bad." in trace_pair["rejected"]["value"] and trace_pair["metadata"]["chosen"] is None
    data = load_dataset("json", data_files=str(folder / "train.jsonl"),
                        cache_dir=str(tmp_path / "cache"), split="train")  # fmt: skip
    assert len(data) == 17


def test_dedup_leaves_out_near_duplicate_samples_of_a_problem(tmp_path):
    campaign = CampaignFactory()
    problem = ProblemFactory(external_id="dup")
    text = (
        "Hmm, let me think about how to start. The number is close to a perfect square, "
        "so maybe a difference of squares helps here. Wait, let me check that again."
    )
    for n in range(2):
        SampleFactory(campaign=campaign, problem=problem, sample_index=n, thought=text)
    SampleFactory(campaign=campaign, problem=problem, sample_index=2,
                  thought="A different approach entirely: count the cases one by one.")  # fmt: skip
    args = ["--source", "rollouts", "--format", "messages", "--samples-per-problem", "3"]
    assert len(lines(export(tmp_path, *args) / "train.jsonl")) == 3
    folder = export(tmp_path, *args, "--dedup", name="dedup")
    assert len(lines(folder / "train.jsonl")) == 2
    assert json.loads((folder / "manifest.json").read_text())["dedup"]["dropped"] == 1


def _archive(export_row, name="train.jsonl") -> list[dict]:
    import zipfile

    with zipfile.ZipFile(export_row.archive) as archive:
        text = archive.read(f"export-{export_row.pk}/{name}").decode()
    return [json.loads(line) for line in text.splitlines()]


def test_the_api_exports_rollout_pairs_as_the_command_does(
    api_as, admin_user, rounds, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from curation.models import Export

    settings.VAR_DIR = tmp_path
    api = api_as(admin_user)
    body = {"format": "dpo", "records": "rollouts", "campaign": "round-a",
            "pairs_per_problem": 2, "seed": 3}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/exports/", body, format="json")
    assert response.status_code == 202, response.json()
    made = Export.objects.get(pk=response.json()["id"])
    assert made.status == "succeeded", made.error
    assert made.filters["records"] == "rollouts" and made.filters["campaign"] == "round-a"
    command = export(tmp_path, "--source", "rollouts", "--format", "dpo", "--campaign",
                     "round-a", "--pairs-per-problem", "2", "--seed", "3")  # fmt: skip
    assert _archive(made) == lines(command / "train.jsonl")
    assert len(_archive(made)) == 2  # r1 has no incorrect sample to pair


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"format": "prm", "records": "rollouts"},
            "records",
            "does not apply to --source rollouts",
        ),
        ({"format": "dpo", "records": "rollouts", "campaign": "nope"}, "campaign", "nope"),
        ({"format": "dpo", "campaign": "round-a"}, "campaign", "set records to rollouts"),
        ({"format": "messages", "records": "rollouts", "pick": "longest"}, "pick", "longest"),
    ],
)
def test_the_api_refuses_what_rollouts_cannot_be_exported_as(api_as, admin_user, rounds, body,
                                                             field, message):  # fmt: skip
    from curation.models import Export

    refused = api_as(admin_user).post("/api/exports/", body, format="json")
    assert refused.status_code == 400 and message in str(refused.json()[field])
    assert not Export.objects.exists()


def test_the_exports_page_exports_correct_samples(
    client_as, admin_user, rounds, settings, tmp_path, tasks_inline,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from curation.models import Export

    settings.VAR_DIR = tmp_path
    client = client_as(admin_user)
    page = client.get("/exports/").content.decode()
    assert "<option>traces,rollouts</option>" in page and "<option>random</option>" in page
    form = {"format": "messages", "records": "rollouts", "campaign": "round-a",
            "samples_per_problem": "1", "pick": "shortest", "split": "train=1"}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/exports/", form).status_code == 302
    made = Export.objects.get()
    assert made.status == "succeeded", made.error
    written = _archive(made)
    assert len(written) == 2 and {row["source"] for row in written} == {"rollout"}
    listed = client.get("/exports/").content.decode()
    assert f'id="export-{made.pk}-records">rollouts of round-a<' in listed
