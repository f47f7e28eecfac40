"""What an export says of itself: dataset_info.json for LLaMA-Factory and the dataset card."""

from . import hygiene, prm

DATASET_NAME = "journey"


def dataset_info(fmt: str, files: list[dict]) -> dict:
    if fmt == "messages":
        spec = {"formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "system_tag": "system"}}  # fmt: skip
    elif fmt == "sharegpt":
        spec = {"formatting": "sharegpt",
                "columns": {"messages": "conversations", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                         "assistant_tag": "gpt"}}  # fmt: skip
    elif fmt == "alpaca":
        spec = {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input",
                "response": "output", "system": "system"}}  # fmt: skip
    else:  # dpo
        spec = {"formatting": "sharegpt", "ranking": True,
                "columns": {"messages": "conversations", "chosen": "chosen",
                            "rejected": "rejected", "system": "system"},
                "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                         "assistant_tag": "gpt"}}  # fmt: skip
    return {f"{DATASET_NAME}_{f['split']}": {"file_name": f["name"], **spec} for f in files}


def card(fmt: str, style: str, manifest: dict) -> str:
    lines = [
        f"# {DATASET_NAME}: journey-learning traces",
        "",
        "Long reasoning traces expanded by an LLM from human records of how problems were "
        "solved (attempts, reflections, corrections, common-sense notes), then reviewed.",
        "",
        f"- Format: `{fmt}`; "
        + (
            f"labels: `{manifest.get('labels')}`"
            if fmt in prm.FORMATS
            else f"thought style: `{style}`"
        ),
        f"- Records: {', '.join(f'{k} {v}' for k, v in manifest['counts'].items())}",
        f"- Prompt versions: {', '.join(manifest['prompt_versions']) or 'none'}",
        f"- Models: {', '.join(manifest['models']) or 'none'}",
        "- Simulated traces included: "
        + ("yes" if manifest["filters"].get("include_simulated") else "no"),
        "- Annotators and reviewers are pseudonymized.",
        "- Checksums and the exact options are in manifest.json.",
        "",
    ]
    if manifest.get("dedup"):
        lines.append(f"- Near-duplicate traces of the same problem left out: "
                     f"{manifest['dedup']['dropped']:,} (Jaccard of word shingles at least "
                     f"{manifest['dedup']['threshold']}).")  # fmt: skip
        lines.append("")
    lines += rollout_lines(fmt, manifest)
    lines += hygiene.card_lines(manifest.get("contamination", {}))
    if manifest["warnings"]:
        lines += ["## Warnings", "", *(f"- {warning}" for warning in manifest["warnings"]), ""]
    if style == "reasoning-field" and fmt in READING_REASONING:
        lines += _reasoning_usage(fmt, manifest["files"][0]["name"])
    if manifest.get("pair_layout") == "trl":
        lines += TRL_USAGE
    if fmt in prm.FORMATS:
        lines += prm.card_usage(fmt, manifest["files"][0]["name"], manifest["labels"],
                                manifest["neutral"])  # fmt: skip
    return "\n".join(lines)


# Where the thought and the prompt are in a record of each format, for the card's example.
READING_REASONING = {
    "messages": ("row['messages'][-1]['reasoning']", "row['messages'][-1]['content']",
                 '[m for m in row["messages"] if m["role"] != "assistant"]'),
    "sharegpt": ("row['reasoning']", "row['conversations'][-1]['value']",
                 '[{"role": "user", "content": row["conversations"][0]["value"]}]'),
    "alpaca": ("row['reasoning']", "row['output']",
               '[{"role": "user", "content": row["instruction"]}]'),
}  # fmt: skip


def _reasoning_usage(fmt: str, file_name: str) -> list[str]:
    """reasoning-field is for Hugging Face datasets and TRL: LLaMA-Factory has no column
    for it, so the card shows how to read the thought and put it where a model wants it."""
    thought, solution, prompt = READING_REASONING[fmt]
    return [
        "## The reasoning field",
        "",
        "The thought is in its own `reasoning` key and the solution alone is the answer. "
        "LLaMA-Factory has no column for such a key (it would train on the solution only), "
        "so there is no dataset_info.json: load the files with Hugging Face `datasets` and "
        "write the thought the way your model's chat template expects, e.g. for TRL's "
        "`SFTTrainer` (prompt-completion, `<think>` tags):",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'data = load_dataset("json", data_files="{file_name}", split="train")',
        "",
        "",
        "def to_prompt_completion(row):",
        f'    answer = f"<think>\\n{{{thought}}}\\n</think>\\n\\n{{{solution}}}"',
        "    return {",
        f'        "prompt": {prompt},',
        '        "completion": [{"role": "assistant", "content": answer}],',
        "    }",
        "",
        "",
        "data = data.map(to_prompt_completion, remove_columns=data.column_names)",
        "```",
        "",
    ]


def rollout_lines(fmt: str, manifest: dict) -> list[str]:
    """What the rollout samples in the export are and how they were chosen."""
    if "rollouts" not in manifest:
        return []
    rollouts, sources = manifest["rollouts"], manifest["sources"]
    if fmt == "dpo":
        how = (f"each pair is a correct and an incorrect sample of the same problem and "
               f"campaign, at most {rollouts['pairs_per_problem']} per problem, drawn with the "
               "seed (pairs of unused samples first)")  # fmt: skip
    else:
        order = "shortest first" if rollouts["pick"] == "shortest" else "drawn with the seed"
        how = (f"rejection sampling: correct samples only, at most "
               f"{rollouts['samples_per_problem']} per problem ({order})")  # fmt: skip
    return [
        "## Rollout samples",
        "",
        "Answers of a policy model (a rollout campaign) whose final `\\boxed{}` answer was "
        f"verified against the problem's reference answer with math-verify; {how}.",
        "",
        f"- Records by source: {', '.join(f'{k} {v:,}' for k, v in sources.items())} "
        "(each record's `source` field says which)",
        f"- Campaigns: {', '.join(rollouts['campaigns_written']) or 'none'}",
        *(["- Splits are by problem across both sources: a problem's traces and samples "
           "land in the same split."] if len(sources) == 2 else []),
        "",
    ]  # fmt: skip


TRL_USAGE = [
    "## TRL's conversational preference format",
    "",
    "`prompt`, `chosen` and `rejected` are message lists, as TRL's `DPOTrainer` reads them:",
    "",
    "```python",
    "from datasets import load_dataset",
    "",
    'pairs = load_dataset("json", data_files="train.jsonl", split="train")',
    "# trainer = DPOTrainer(model=model, args=DPOConfig(...), train_dataset=pairs, "
    "processing_class=tokenizer)",
    "```",
    "",
]
