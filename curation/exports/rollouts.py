"""Rollout samples as training data: DPO pairs of a correct and an incorrect sample of one
campaign, and rejection-sampled SFT (the correct samples only).

Only finished samples whose answer was verified correct or incorrect are read; an
unverified sample (no answer math-verify could read) is neither chosen nor rejected. What
is picked for a problem depends on the export's seed and the problem alone, so the same
database and options give the same records.
"""

import random
from collections.abc import Iterable, Iterator
from itertools import groupby, islice
from typing import NamedTuple

from django.db.models import OuterRef, QuerySet

from annotator.selectors import contaminated
from expansion.models import RolloutCampaign, RolloutSample

from ..filters import ExportFilterForm
from . import records

SOURCES = ("traces", "rollouts")
FORMATS = ("messages", "sharegpt", "alpaca", "dpo")
PICKS = ("shortest", "random")
PAIRS_PER_PROBLEM = 5
SAMPLES_PER_PROBLEM = 1
CORRECT, INCORRECT = RolloutSample.Verdict.CORRECT, RolloutSample.Verdict.INCORRECT
# The export filters that apply to samples (the problem's, simulated, benchmarks).
SAMPLE_FILTERS = ("source", "subject", "level", "include_simulated", "allow_contaminated")


def parse_sources(text: str) -> tuple[str, ...] | None:
    """'traces', 'rollouts' or both comma-separated -> in SOURCES order; None otherwise."""
    parts = {part.strip() for part in text.split(",") if part.strip()}
    if not parts or not parts <= set(SOURCES):
        return None
    return tuple(source for source in SOURCES if source in parts)


def campaigns_named(text: str) -> list[RolloutCampaign]:
    """'round-1,7' -> those campaigns (a name, or an id); ValueError names an unknown one."""
    found, unknown = {}, []
    for part in filter(None, (p.strip() for p in str(text or "").split(","))):
        campaign = RolloutCampaign.objects.filter(name=part).first()
        if campaign is None and part.isdigit():
            campaign = RolloutCampaign.objects.filter(pk=int(part)).first()
        if campaign is None:
            unknown.append(part)
        else:
            found[campaign.pk] = campaign
    if unknown:
        known = list(RolloutCampaign.objects.order_by("name").values_list("name", flat=True)[:10])
        raise ValueError(f"--campaign: no campaign named or numbered {', '.join(unknown)}; "
                         f"campaigns: {', '.join(known) or 'none yet'}.")  # fmt: skip
    return sorted(found.values(), key=lambda campaign: campaign.pk)


def samples_queryset(filters: dict, *, campaigns: Iterable[int] = (),
                     decontaminate: bool = True) -> QuerySet[RolloutSample]:  # fmt: skip
    """The verified samples an export covers, in a stable order (problem, campaign, index).

    Of the export's filters only the problem's source, subject and level, the simulated
    flag and the allowed benchmarks apply; ValueError names a refused one.
    """
    form = ExportFilterForm.bind({k: v for k, v in filters.items() if k in SAMPLE_FILTERS})
    if not form.is_valid():
        raise ValueError(" ".join(form.refusals()))
    values = form.filters()
    samples = RolloutSample.objects.filter(status=RolloutSample.Status.SUCCEEDED,
                                           verdict__in=(CORRECT, INCORRECT))  # fmt: skip
    campaigns = list(campaigns)
    if campaigns:
        samples = samples.filter(campaign_id__in=campaigns)
    for lookup, key in (("problem__source", "source"), ("problem__subject", "subject"),
                        ("problem__level", "level")):  # fmt: skip
        if values.get(key) not in (None, ""):
            samples = samples.filter(**{lookup: values[key]})
    if not values.get("include_simulated"):
        samples = samples.filter(is_simulated=False)
    if decontaminate:
        allowed = values.get("allow_contaminated") or []
        samples = samples.filter(~contaminated(OuterRef("problem"), besides=allowed))
    return samples.order_by("problem__source", "problem__external_id", "campaign_id",
                            "sample_index", "pk")  # fmt: skip


class SampleRow(NamedTuple):
    """One verified sample as the training formats need it."""

    pk: int
    thought: str
    solution: str
    answer: str
    reference_answer: str
    verdict: str
    completion_tokens: int | None
    is_simulated: bool
    statement: str
    source: str
    external_id: str
    subject: str
    level: int | None
    campaign_id: int
    campaign_name: str
    prompt_name: str
    prompt_number: int
    endpoint: str
    model: str  # the endpoint's model

    @property
    def problem_key(self) -> str:
        return f"{self.source}:{self.external_id}"

    @property
    def prompt_version(self) -> str:
        return f"{self.prompt_name} v{self.prompt_number}"  # as str(SolvePrompt)

    @property
    def text(self) -> str:
        return f"{self.thought.strip()}\n{self.solution.strip()}"


SAMPLE_COLUMNS = (
    "pk", "thought", "solution", "answer", "reference_answer", "verdict", "completion_tokens",
    "is_simulated", "problem__statement", "problem__source", "problem__external_id",
    "problem__subject", "problem__level", "campaign_id", "campaign__name",
    "campaign__prompt__name", "campaign__prompt__version", "endpoint__name", "endpoint__model",
)  # fmt: skip


def rows(samples: QuerySet[RolloutSample]) -> Iterator[SampleRow]:
    """CHUNK samples a fetch (a server-side cursor on PostgreSQL: inside transaction.atomic)."""
    values = samples.values_list(*SAMPLE_COLUMNS).iterator(chunk_size=records.CHUNK)
    while chunk := list(islice(values, records.CHUNK)):
        yield from (SampleRow(*value) for value in chunk)


def by_problem(samples: Iterable[SampleRow]) -> Iterator[tuple[str, list[SampleRow]]]:
    """The samples of one problem at a time (they come ordered by problem)."""
    for key, group in groupby(samples, key=lambda row: row.problem_key):
        yield key, list(group)


def _length(row: SampleRow) -> tuple:
    # Samples without a token count come after those with one, by their text's length.
    tokens = row.completion_tokens
    return (tokens is None, tokens or 0, len(row.text), row.pk)


def _rng(seed: int, group: list[SampleRow]) -> random.Random:
    """A draw that depends on the seed and the problem only (a str seed is hashed the same
    in every process), so that adding a problem changes no other problem's draw."""
    return random.Random(f"{seed}:{group[0].problem_key if group else ''}")  # noqa: S311


def picked(group: list[SampleRow], *, count: int, pick: str, seed: int) -> list[SampleRow]:
    """At most count correct samples of one problem: the shortest first, or a seeded draw."""
    correct = [row for row in group if row.verdict == CORRECT]
    if pick == "shortest":
        return sorted(correct, key=_length)[:count]
    correct.sort(key=lambda row: row.pk)
    return _rng(seed, correct).sample(correct, min(count, len(correct)))


def pairs(group: list[SampleRow], *, count: int, seed: int) -> list[tuple[SampleRow, SampleRow]]:
    """At most count (correct, incorrect) pairs of samples of the same campaign, drawn with
    the seed; pairs of samples no earlier pair used come first, so that a problem with 5
    correct and 5 incorrect samples gives 5 pairs of 10 different samples."""
    candidates = []
    ordered = sorted(group, key=lambda row: (row.campaign_id, row.pk))
    for _, samples in groupby(ordered, key=lambda row: row.campaign_id):
        samples = list(samples)
        good = [row for row in samples if row.verdict == CORRECT]
        bad = [row for row in samples if row.verdict == INCORRECT]
        candidates += [(chosen, rejected) for chosen in good for rejected in bad]
    if not candidates:
        return []
    _rng(seed, group).shuffle(candidates)
    taken, keys, used = [], set(), set()
    for fresh_only in (True, False):
        for chosen, rejected in candidates:
            if len(taken) == count:
                return taken
            key = (chosen.pk, rejected.pk)
            if key in keys or (fresh_only and (chosen.pk in used or rejected.pk in used)):
                continue
            taken.append((chosen, rejected))
            keys.add(key)
            used.update(key)
    return taken


def _verification(row: SampleRow) -> dict:
    return {"verdict": row.verdict, "answer": row.answer, "reference": row.reference_answer}


def _problem(row: SampleRow) -> dict:
    return {"problem_source": row.source, "problem_id": row.external_id,
            "subject": row.subject, "level": row.level, "campaign": row.campaign_name,
            "campaign_id": row.campaign_id, "prompt_version": row.prompt_version}  # fmt: skip


def _sample(row: SampleRow) -> dict:
    return {"sample_id": row.pk, "model": row.model, "endpoint": row.endpoint,
            "completion_tokens": row.completion_tokens, "simulated": row.is_simulated,
            "verification": _verification(row)}  # fmt: skip


def sft_record(row: SampleRow, *, fmt: str, style: str, system: str) -> dict:
    """A correct sample as a training record of fmt (messages, sharegpt, alpaca)."""
    return records.training_record(
        row.statement, row.thought.strip(), row.solution.strip(), fmt=fmt, style=style,
        system=system, metadata={**_problem(row), **_sample(row)},
    )  # fmt: skip


def pair_record(chosen: SampleRow, rejected: SampleRow, *, style: str, system: str,
                layout: str) -> dict:  # fmt: skip
    """A correct and an incorrect sample of the same problem and campaign as a DPO pair."""
    metadata = {**_problem(chosen), "chosen": _sample(chosen), "rejected": _sample(rejected)}
    return records.pair_record(
        chosen.statement,
        records.styled(chosen.thought.strip(), chosen.solution.strip(), style),
        records.styled(rejected.thought.strip(), rejected.solution.strip(), style),
        system=system, metadata=metadata, layout=layout,
    )  # fmt: skip


Made = tuple[str, dict, tuple[SampleRow, ...]]  # problem key, record, the samples in it


def export_records(samples: Iterable[SampleRow], *, fmt: str, style: str, system: str,
                   seed: int, pairs_per_problem: int, samples_per_problem: int, pick: str,
                   layout: str, unique=list) -> Iterator[Made]:  # fmt: skip
    """(problem key, record, the samples in it), problem by problem; unique drops
    near-duplicates of a list of one problem's samples (the export's --dedup)."""
    for key, group in by_problem(samples):
        if fmt == "dpo":
            good = unique([row for row in group if row.verdict == CORRECT])
            bad = unique([row for row in group if row.verdict == INCORRECT])
            for chosen, rejected in pairs(good + bad, count=pairs_per_problem, seed=seed):
                record = pair_record(chosen, rejected, style=style, system=system, layout=layout)
                yield key, record, (chosen, rejected)
            continue
        good = unique([row for row in group if row.verdict == CORRECT])
        for row in picked(good, count=samples_per_problem, pick=pick, seed=seed):
            yield key, sft_record(row, fmt=fmt, style=style, system=system), (row,)


# A mixed export's metadata: every record has the same keys (None where one does not apply),
# so that `datasets` reads one schema for the whole file, however it splits it into blocks.
TRACE_KEYS = ("problem_source", "problem_id", "subject", "level", "trace_id", "prompt_version",
              "model", "completion_tokens", "review", "edited", "simulated", "annotator",
              "reviewers")  # fmt: skip
TRACE_PAIR_KEYS = (*TRACE_KEYS, "rejected_trace_id", "rejected_prompt_version")
SAMPLE_KEYS = ("problem_source", "problem_id", "subject", "level", "campaign", "campaign_id",
               "prompt_version", "sample_id", "model", "endpoint", "completion_tokens",
               "simulated", "verification")  # fmt: skip
SAMPLE_PAIR_KEYS = (*SAMPLE_KEYS[:7], "chosen", "rejected")


def mixed_keys(fmt: str) -> tuple[str, ...]:
    both = (TRACE_PAIR_KEYS, SAMPLE_PAIR_KEYS) if fmt == "dpo" else (TRACE_KEYS, SAMPLE_KEYS)
    return tuple(dict.fromkeys(both[0] + both[1]))


def sourced(record: dict, source: str, keys: tuple[str, ...] | None) -> dict:
    """The record with its ``source`` ("trace" or "rollout") before its metadata, whose keys
    are ``keys`` in a mixed export."""
    metadata = record.pop("metadata")
    if keys:
        metadata = {key: metadata.get(key) for key in keys}
    return {**record, "source": source, "metadata": metadata}
