"""Saving one rater's rating of one step: who may rate, how many raters, which version."""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from annotator import roles
from annotator.models import WorkspaceSettings
from expansion.models import Trace

from ..models import Correctness, Faithfulness, LostRecordStep, StepRating, StepSplit, TraceStep
from .steps import trace_steps_ensure


class RatingRefused(Exception):
    """The rating breaks a rule; the message says which."""


class RaterRefused(RatingRefused, roles.OwnAnnotation):
    """Not this person: their own annotation, or the trace has all its raters (a 403)."""


class NoSuchStep(RatingRefused):
    """The trace has no step of that number (a 404)."""


class RatingConflict(RatingRefused):
    """The save was based on a version that is no longer the stored one (a 409)."""

    def __init__(self, message: str, current: StepRating | None) -> None:
        super().__init__(message)
        self.current = current


@dataclass(frozen=True)
class RatingValues:
    correctness: int | None
    faithfulness: str
    note: str


def _check_values(values: RatingValues) -> None:
    if values.correctness is not None and values.correctness not in Correctness.values:
        raise RatingRefused(gettext("Correctness is -1, 0 or 1."))
    if values.faithfulness and values.faithfulness not in Faithfulness.values:
        raise RatingRefused(
            gettext("Faithfulness is one of %(values)s, not %(value)r.")
            % {"values": ", ".join(Faithfulness.values), "value": values.faithfulness}
        )
    if len(values.note) > StepRating.NOTE_MAX_CHARS:
        raise RatingRefused(gettext("A note has at most %(max)s characters.")
                            % {"max": f"{StepRating.NOTE_MAX_CHARS:,}"})  # fmt: skip


def _check_rater(trace: Trace, rater) -> None:
    try:
        roles.refuse_own_annotation(rater, annotator_id=trace.annotation.annotator_id,
                                    doing="rate the steps of a trace of")  # fmt: skip
    except roles.OwnAnnotation as exc:
        raise RaterRefused(str(exc)) from exc
    if trace.status != Trace.Status.SUCCEEDED:
        raise RatingRefused(gettext("Only the steps of a succeeded trace can be rated."))


def trace_raters(trace_id: int) -> set[int]:
    """Who rated any standing step of the trace."""
    return set(
        StepRating.objects.filter(step__trace_id=trace_id, step__retired_at__isnull=True)
        .values_list("rater_id", flat=True)
        .distinct()
    )


def _check_room(trace: Trace, rater) -> None:
    """A new rater joins only while the trace has fewer raters than the workspace asks for.
    The trace's split row is locked, so that two first ratings cannot both take the last place."""
    StepSplit.objects.select_for_update().filter(trace=trace).first()
    raters = trace_raters(trace.pk)
    wanted = WorkspaceSettings.current().raters_per_trace
    if rater.pk not in raters and len(raters) >= wanted:
        raise RaterRefused(
            ngettext(
                "This trace already has its %(count)s rater; rate another one.",
                "This trace already has its %(count)s raters; rate another one.",
                wanted,
            )
            % {"count": wanted}
        )


def _standing_step(trace: Trace, number: int) -> TraceStep:
    step = TraceStep.objects.filter(trace=trace, number=number, retired_at__isnull=True).first()
    if step is None:
        trace_steps_ensure(trace)  # a trace split before steps were stored, or since edited
        step = TraceStep.objects.filter(trace=trace, number=number, retired_at__isnull=True).first()
    if step is None:
        raise NoSuchStep(f"Trace {trace.pk} has no step {number}.")
    return step


def _trace(trace_id: int) -> Trace:
    return (
        Trace.objects.select_related("annotation")
        .only("pk", "status", "annotation__annotator_id")
        .get(pk=trace_id)
    )


def _step_with_trace(trace_id: int, number: int) -> TraceStep | None:
    """The standing step with what the checks need of its trace, in one query (a save's
    usual case); None when it is not stored (yet), which ``_standing_step`` then sorts out."""
    return (
        TraceStep.objects.filter(trace_id=trace_id, number=number, retired_at__isnull=True)
        .select_related("trace__annotation")
        .only("pk", "trace__status", "trace__annotation__annotator_id")
        .first()
    )


@transaction.atomic
def step_rating_save(
    *, trace_id: int, number: int, rater, values: RatingValues, version: int
) -> StepRating:
    """Save the rater's rating of step ``number``, based on ``version`` (0: a first rating).

    One ``UPDATE ... WHERE version = N`` checks and bumps the version, so of two saves based
    on one version the first is kept and the other is a RatingConflict naming the current one.
    """
    _check_values(values)
    step = _step_with_trace(trace_id, number)
    trace = step.trace if step is not None else _trace(trace_id)
    _check_rater(trace, rater)
    if step is None:
        step = _standing_step(trace, number)
    fields = {"correctness": values.correctness, "faithfulness": values.faithfulness,
              "note": values.note}  # fmt: skip
    if version == 0:
        _check_room(trace, rater)
        try:
            with transaction.atomic():
                return StepRating.objects.create(step=step, rater=rater, **fields)
        except IntegrityError:
            pass  # rated meanwhile: a conflict, below
    else:
        updated = StepRating.objects.filter(step=step, rater=rater, version=version).update(
            version=F("version") + 1, updated_at=timezone.now(), **fields
        )
        if updated:
            rating = StepRating.objects.get(step=step, rater=rater)
            rating.rater = rater  # the answer names the rater: no query for them
            return rating
    current = StepRating.objects.filter(step=step, rater=rater).first()
    if current is not None:
        current.rater = rater
    saved = (gettext("version %(version)s") % {"version": current.version} if current
             else gettext("no rating"))  # fmt: skip
    raise RatingConflict(
        gettext(
            "Step %(number)s changed since you loaded it (you sent version %(version)s; "
            "%(saved)s is stored). Reload to see it."
        )
        % {"number": number, "version": version, "saved": saved},
        current,
    )


@transaction.atomic
def record_step_lost_set(*, trace_id: int, record_step: int, rater, lost: bool) -> bool:
    """Mark (or unmark) a step of the record as having no step in the trace."""
    trace = _trace(trace_id)
    _check_rater(trace, rater)
    steps = Trace.objects.filter(pk=trace_id).values_list("record", flat=True).first() or {}
    if not 1 <= record_step <= len(steps.get("steps", [])):
        raise NoSuchStep(f"The record has no step {record_step}.")
    marks = LostRecordStep.objects.filter(trace=trace, rater=rater, record_step=record_step)
    if lost:
        _check_room(trace, rater)
        LostRecordStep.objects.get_or_create(trace=trace, rater=rater, record_step=record_step)
    else:
        marks.delete()
    return lost
