"""Checks computed again: answers left unchecked for lack of time, and every check on demand.

Under load, or on an answer sympy is slow on, a comparison can pass its time bound and the
trace's answer check is stored unchecked (None) with ``answer_timed_out``. A periodic task
(expansion.tasks.recheck_answers) compares those again, a bounded number per run, so that an
unchecked answer is a passing state, not a final one. Answers math-verify cannot read, or
traces without a reference answer, are not timed out and are not rechecked.
"""

from .checks import answer_checks, check_flags, trace_checks
from .models import Trace
from .norms import norms_all, norms_of
from .signals import trace_checks_changed

RECHECK_BATCH = 20  # traces per run: each comparison may take its whole time bound


def traces_answer_timed_out():
    """Succeeded traces with a comparison left unchecked for lack of time, oldest first."""
    return Trace.objects.filter(
        status=Trace.Status.SUCCEEDED, checks__answer_timed_out__0__isnull=False
    ).order_by("pk")


def traces_recheck_answers(*, limit: int = RECHECK_BATCH) -> int:
    """Compare again the answers of up to ``limit`` such traces; how many now have a result."""
    resolved = 0
    traces = traces_answer_timed_out().select_related("annotation__problem")[:limit]
    norms = norms_all()
    for trace in traces.only("checks", "record", "prompt_id", "annotation__problem__level",
                             "annotation__problem__reference_answer"):  # fmt: skip
        checks = {
            **trace.checks,
            **answer_checks(
                trace.checks.get("boxed_answer") or "",
                reference_answer=trace.annotation.problem.reference_answer,
                annotator_answer=trace.record.get("final_answer", ""),
            ),
        }
        # Only the fields written here: the trace's other columns may change meanwhile.
        Trace.objects.filter(pk=trace.pk).update(
            checks=checks, **check_flags(checks, norms_of(trace, norms))
        )
        trace_checks_changed.send_robust(sender=Trace, trace_id=trace.pk)
        resolved += not checks["answer_timed_out"]
    return resolved


ANSWER_KEYS = ("matches_reference", "matches_annotator", "answer_timed_out")
CHUNK = 200


def traces_check_again(*, traces=None) -> int:
    """Compute the checks and flags of succeeded traces again from their stored texts.

    For traces checked before a check existed, or after a threshold setting changed. The
    answer comparisons are kept when the boxed answer is the same (they are the slow part).
    Returns how many traces were checked. The checks of a trace a reviewer edited are those
    of the model's text, as when it succeeded.
    """
    traces = Trace.objects.filter(status=Trace.Status.SUCCEEDED) if traces is None else traces
    norms = norms_all()
    done, last = 0, 0
    while True:
        chunk = list(
            traces.filter(pk__gt=last).select_related("annotation__problem", "prompt")
            .only("thought", "solution", "checks", "record", "finish_reason",
                  "completion_tokens", "usage_estimated", "prompt_id",
                  "prompt__target_tokens_min", "prompt__target_tokens_max",
                  "annotation__problem__level", "annotation__problem__reference_answer")
            .order_by("pk")[:CHUNK]
        )  # fmt: skip
        if not chunk:
            return done
        last = chunk[-1].pk
        for trace in chunk:
            old = trace.checks or {}
            checks = trace_checks(
                thought=trace.thought, solution=trace.solution,
                split_ok=old.get("split_ok", bool(trace.solution)),
                finish_reason=trace.finish_reason, completion_tokens=trace.completion_tokens,
                tokens_estimated=trace.usage_estimated,
                target_min=trace.prompt.target_tokens_min,
                target_max=trace.prompt.target_tokens_max,
                reference_answer=trace.annotation.problem.reference_answer,
                annotator_answer=trace.record.get("final_answer", ""),
                steps=trace.record["steps"],
                answers={key: old[key] for key in ANSWER_KEYS}
                if all(key in old for key in ANSWER_KEYS)
                and old.get("boxed_answer") is not None
                else None,
            )  # fmt: skip
            Trace.objects.filter(pk=trace.pk).update(
                checks=checks, **check_flags(checks, norms_of(trace, norms))
            )
            trace_checks_changed.send_robust(sender=Trace, trace_id=trace.pk)
            done += 1
