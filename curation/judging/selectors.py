"""The judge's ratings of a trace's standing steps: from its latest succeeded judge job."""

from dataclasses import dataclass

from expansion.models import Trace

from ..models import JudgeJob, TraceStep


@dataclass(frozen=True)
class Judgement:
    job: JudgeJob
    by_step: dict[int, dict]  # step id -> {step, correctness, faithfulness, reason}


def _pairs(job: JudgeJob) -> dict[int, dict]:
    return dict(zip(job.step_ids, job.ratings, strict=False))


def judgement(trace: Trace) -> Judgement | None:
    """The latest succeeded judge job of the trace with its ratings by step id (steps an edit
    retired since keep their ratings there, but are no longer shown)."""
    job = (
        JudgeJob.objects.filter(trace=trace, status=JudgeJob.Status.SUCCEEDED)
        .select_related("prompt", "endpoint")
        .order_by("-finished_at", "-pk")
        .first()
    )
    return Judgement(job, _pairs(job)) if job else None


def latest_judge_job(trace: Trace) -> JudgeJob | None:
    return JudgeJob.objects.filter(trace=trace).select_related("prompt", "endpoint").first()


def judge_step_labels(step_ids: list[int]) -> dict[int, tuple[int, str]]:
    """(correctness, faithfulness) of each of these steps by its trace's latest succeeded
    judge job that rated it; one query."""
    wanted = set(step_ids)
    if not wanted:
        return {}
    traces = TraceStep.objects.filter(pk__in=wanted).values("trace_id").distinct()
    jobs = (
        JudgeJob.objects.filter(trace_id__in=traces, status=JudgeJob.Status.SUCCEEDED)
        .order_by("trace_id", "finished_at", "pk")
        .values_list("step_ids", "ratings")
    )
    labels: dict[int, tuple[int, str]] = {}
    for ids, ratings in jobs:  # later jobs overwrite earlier ones
        for step_id, rating in zip(ids, ratings, strict=False):
            if step_id in wanted:
                labels[step_id] = (rating["correctness"], rating["faithfulness"])
    return labels
