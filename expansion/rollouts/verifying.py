"""A finished rollout sample's verdict and checks, and what a campaign's samples say of a problem.

``sample_verify`` reads a sample's answer (split by its prompt's thought format, the last
``\\boxed{}`` of the solution compared with the problem's reference by math-verify, in the
comparison pool that bounds its time) and returns the fields to store; the trace checks'
own functions measure truncation, loops and reflection. ``difficulty_recompute`` is the one
writer of ``ProblemDifficulty``: pass rate, token means, the majority answer, and whether
that majority disputes the reference answer.
"""

import re
from collections import Counter

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, Q
from django.utils import timezone

from annotator.answer_check import answers_compare

from ..checks import check_flags, thought_repetitions
from ..language import EN, language_of
from ..markers import marker_counts
from ..models import ProblemDifficulty, RolloutSample
from ..parsing import last_boxed, split_thought

# A reference answer is disputed when at least DISPUTE_MIN_SAMPLES samples were verified and
# at least DISPUTE_MAJORITY of them agree on one answer that no correct sample gave
# (settings ROLLOUT_DISPUTE_MIN_SAMPLES and ROLLOUT_DISPUTE_MAJORITY override them).
DISPUTE_MIN_SAMPLES = 8
DISPUTE_MAJORITY = 0.6

FLAGS = ("flag_truncated", "flag_repetition", "flag_format", "flag_no_reflection")
FINISHED = (RolloutSample.Status.SUCCEEDED, RolloutSample.Status.FAILED)
VERIFIED = (RolloutSample.Verdict.CORRECT, RolloutSample.Verdict.INCORRECT)

_DELIMITERS = re.compile(r"\$|\\left(?![a-zA-Z])|\\right(?![a-zA-Z])|\\[!,;:]")
_DFRAC = re.compile(r"\\[dt]frac(?![a-zA-Z])")
# Whitespace goes, but between two word characters ("no solution", "\pi r"), where it is one.
_SPACE = re.compile(r"\s+")
_SPACE_AROUND = re.compile(r"(?<!\w)\s+|\s+(?!\w)")
_TEXT = "\\text{"


def _text_unwrapped(answer: str) -> str:
    """``\\text{...}`` around the whole answer taken off (not ``\\text{a} or \\text{b}``)."""
    if not (answer.startswith(_TEXT) and answer.endswith("}")):
        return answer
    inner, depth = answer[len(_TEXT) : -1], 0
    for char in inner:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:  # the \text's brace closes before the end
            return answer
    return inner.strip() if depth == 0 else answer


def answer_normalized(answer: str) -> str:
    """An answer in the form samples are grouped by for the majority: without ``$``,
    ``\\left``/``\\right``, thin spaces, a trailing period or a ``\\text{}`` wrapper, with
    ``\\dfrac`` as ``\\frac`` and no whitespace but between words."""
    text = _DFRAC.sub(r"\\frac", _DELIMITERS.sub("", answer))
    text = _SPACE.sub(" ", _SPACE_AROUND.sub("", text)).strip()
    text = _text_unwrapped(text.removesuffix(".").strip())
    return text.removesuffix(".").strip()


def sample_verify(sample: RolloutSample) -> dict:
    """The fields to store on a finished sample, from its answer (``content``); not saved.

    An answer its prompt's thought format cannot split is thought and solution both, and
    flagged ``format``, as is one without a boxed answer (which is unverified). The verdict
    is ``unverified`` too when math-verify cannot read or decide the answer, or runs out of
    time (``checks["answer_timed_out"]``).
    """
    whole = "\n\n".join(text for text in (sample.reasoning, sample.content) if text.strip())
    split = split_thought(
        sample.content, sample.reasoning, thought_format=sample.campaign.prompt.thought_format
    )
    thought, solution = split if split else (whole, whole)
    answer = last_boxed(solution)
    reference = sample.problem.reference_answer.strip()

    comparison = None
    if not reference:
        verdict = RolloutSample.Verdict.NO_REFERENCE
    elif not answer:
        verdict = RolloutSample.Verdict.UNVERIFIED
    else:
        comparison = answers_compare(reference, answer)
        verdict = {
            True: RolloutSample.Verdict.CORRECT,
            False: RolloutSample.Verdict.INCORRECT,
            None: RolloutSample.Verdict.UNVERIFIED,
        }[comparison.match]

    language = language_of(thought)
    markers = marker_counts(thought, language=language or EN)
    problems = [name for name, failed in (
        ("unsplit", split is None), ("no_boxed", answer is None), ("empty_boxed", answer == ""),
    ) if failed]  # fmt: skip
    checks = {
        "boxed_answer": answer,
        "answer_normalized": answer_normalized(answer) if answer else "",
        # None: not compared (no reference, no answer, or math-verify could not decide).
        "matches_reference": comparison.match if comparison else None,
        "answer_timed_out": bool(comparison and comparison.timed_out),
        "split_ok": split is not None,
        "format": problems,
        "truncated": sample.finish_reason == "length",
        "repetition": thought_repetitions(thought),
        "thought_language": language,
        "markers": markers,
        "reflection_count": sum(markers.values()),
        "completion_tokens": sample.completion_tokens,
        "tokens_estimated": sample.usage_estimated,
        "thought_chars": len(thought),
        "solution_chars": len(solution),
    }
    flags = check_flags(checks)
    return {
        "thought": thought,
        "solution": solution,
        "answer": answer or "",
        "reference_answer": sample.problem.reference_answer,
        "verdict": verdict,
        "verified_at": timezone.now(),
        "checks": checks,
        **{name: flags[name] for name in FLAGS},
    }


def _majority(answers: list[str]) -> tuple[str, int]:
    """The most common answer and its count; a tie goes to the first in sorted order."""
    if not answers:
        return "", 0
    return min(Counter(answers).items(), key=lambda item: (-item[1], item[0]))


@transaction.atomic
def difficulty_recompute(*, problem_id: int, campaign_id: int) -> ProblemDifficulty:
    """What the campaign's finished samples say of the problem, stored (created or updated).

    Call it once a sample's verdict is committed: the row is locked before the samples are
    read, so two samples verified at once both count. The row is made to exist first (a
    lock on a row that does not exist yet holds nothing back: two first samples would both
    read, and the later write would drop the other's count); of two creating it at once,
    the second waits for the first's commit, then reads it. A reviewer's check of the
    dispute is kept unless the majority answer it was about has changed.
    """
    key = {"problem_id": problem_id, "campaign_id": campaign_id}
    try:
        with transaction.atomic():  # a savepoint: the losing insert is undone alone
            ProblemDifficulty.objects.get_or_create(**key)
    except IntegrityError:
        pass  # created by another verification meanwhile; locked below
    existing = ProblemDifficulty.objects.select_for_update().get(**key)
    finished = RolloutSample.objects.filter(
        problem_id=problem_id, campaign_id=campaign_id, status__in=FINISHED
    )
    correct_q = Q(verdict=RolloutSample.Verdict.CORRECT)
    incorrect_q = Q(verdict=RolloutSample.Verdict.INCORRECT)
    counts = finished.aggregate(
        samples=Count("pk"),
        verified=Count("pk", filter=Q(verdict__in=VERIFIED)),
        correct=Count("pk", filter=correct_q),
        mean_tokens_correct=Avg("completion_tokens", filter=correct_q),
        mean_tokens_incorrect=Avg("completion_tokens", filter=incorrect_q),
    )
    verified = [
        (answer_normalized(answer), verdict)
        for answer, verdict in finished.filter(verdict__in=VERIFIED).values_list(
            "answer", "verdict"
        )
    ]
    majority, majority_count = _majority([answer for answer, _ in verified])
    correct_answers = {answer for answer, verdict in verified if verdict == "correct"}
    total = counts["verified"]
    min_samples = getattr(settings, "ROLLOUT_DISPUTE_MIN_SAMPLES", DISPUTE_MIN_SAMPLES)
    share = getattr(settings, "ROLLOUT_DISPUTE_MAJORITY", DISPUTE_MAJORITY)
    fields = {
        **counts,
        "pass_rate": counts["correct"] / total if total else None,
        "majority_answer": majority,
        "majority_count": majority_count,
        "reference_disputed": total >= min_samples
        and majority_count / total >= share
        and majority not in correct_answers,
    }
    if existing.majority_answer != majority:
        fields.update(dispute_checked_by=None, dispute_checked_at=None)
    for name, value in fields.items():
        setattr(existing, name, value)
    existing.save()
    return existing


def difficulties_reconcile(*, within_hours: int = 24) -> int:
    """Recompute the figures of every problem and campaign whose stored counts differ from
    their samples (a recompute lost with its worker), among the samples finished in the
    last ``within_hours``: one grouped count and one read of the stored rows. How many."""
    since = timezone.now() - timezone.timedelta(hours=within_hours)
    recent = RolloutSample.objects.filter(status__in=FINISHED, finished_at__gte=since)
    pairs = recent.values_list("problem_id", "campaign_id").distinct().order_by()
    counted = {
        (row["problem_id"], row["campaign_id"]): (row["samples"], row["verified"])
        for row in RolloutSample.objects.filter(status__in=FINISHED)
        .filter(Q(*[Q(problem_id=p, campaign_id=c) for p, c in pairs], _connector=Q.OR))
        .values("problem_id", "campaign_id")
        .annotate(samples=Count("pk"), verified=Count("pk", filter=Q(verdict__in=VERIFIED)))
        .order_by()
    } if pairs else {}  # fmt: skip
    stored = {
        (d.problem_id, d.campaign_id): (d.samples, d.verified)
        for d in ProblemDifficulty.objects.filter(
            problem_id__in={p for p, _ in counted}, campaign_id__in={c for _, c in counted}
        ).only("problem_id", "campaign_id", "samples", "verified")
    }
    behind = [pair for pair, counts in counted.items() if stored.get(pair) != counts]
    for problem_id, campaign_id in behind:
        difficulty_recompute(problem_id=problem_id, campaign_id=campaign_id)
    return len(behind)
