"""Answer checks left unchecked for lack of time are compared again later.

Under load, or on an answer sympy is slow on, a comparison can pass its time bound and the
trace's answer check is stored unchecked (None) with ``answer_timed_out``. A periodic task
(expansion.tasks.recheck_answers) compares those again, a bounded number per run, so that an
unchecked answer is a passing state, not a final one. Answers math-verify cannot read, or
traces without a reference answer, are not timed out and are not rechecked.
"""

from .checks import answer_checks, check_flags
from .models import Trace
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
    for trace in traces.only("checks", "record", "annotation__problem__reference_answer"):
        checks = {
            **trace.checks,
            **answer_checks(
                trace.checks.get("boxed_answer") or "",
                reference_answer=trace.annotation.problem.reference_answer,
                annotator_answer=trace.record.get("final_answer", ""),
            ),
        }
        # Only the fields written here: the trace's other columns may change meanwhile.
        Trace.objects.filter(pk=trace.pk).update(checks=checks, **check_flags(checks))
        trace_checks_changed.send_robust(sender=Trace, trace_id=trace.pk)
        resolved += not checks["answer_timed_out"]
    return resolved
