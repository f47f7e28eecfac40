"""A trace's thought as numbered steps: its blank-line separated paragraphs, with offsets.

Split when the trace succeeds and again whenever the thought shown to reviewers changes (an
edit, or the undo of one). A step whose text survives the change keeps its row, and so its
ratings, under its new number; one whose text is gone is retired with its ratings.
"""

import hashlib
import logging
from collections import defaultdict, deque

from django.db import connection, transaction
from django.utils import timezone

from expansion.jobs.retrying import DATABASE_DOWN, db_retry
from expansion.models import Trace
from expansion.parsing import paragraph_spans

from ..models import StepSplit, TraceReview, TraceStep

MIN_STEPS = 2  # fewer, and the trace is flagged unsplittable
logger = logging.getLogger(__name__)


def _hash(thought: str) -> str:
    return hashlib.sha256(thought.encode()).hexdigest()


def current_thought(trace: Trace) -> str:
    """The thought reviewers see: a reviewer's edit, else the model's."""
    edited = TraceReview.objects.filter(trace=trace).values_list("edited_thought", flat=True)
    return next(iter(edited), "") or trace.thought


@transaction.atomic
def trace_steps_split(*, trace_id: int, thought: str | None = None) -> StepSplit:
    """Store the steps of the trace's current thought (or of ``thought``); nothing changes
    when they are stored already."""
    trace = Trace.objects.select_for_update().only("pk", "thought").get(pk=trace_id)
    if thought is None:
        thought = current_thought(trace)
    digest = _hash(thought)
    split = StepSplit.objects.filter(trace=trace).first()
    if split is not None and split.thought_hash == digest:
        return split
    spans = paragraph_spans(thought)
    by_text: dict[str, deque[TraceStep]] = defaultdict(deque)
    if split is not None:  # no step stands before the first split: they are written together
        standing = TraceStep.objects.filter(trace=trace, retired_at__isnull=True)
        for step in standing.order_by("number"):
            by_text[step.text].append(step)
        # Retire every standing step first, so that renumbering never meets a taken number.
        standing.update(retired_at=timezone.now())
    kept, added = [], []
    for number, (start, end) in enumerate(spans, start=1):
        text = thought[start:end]
        if by_text[text]:
            step = by_text[text].popleft()
            step.number, step.start, step.end, step.retired_at = number, start, end, None
            kept.append(step)
        else:
            added.append((trace.pk, number, start, end, text))
    TraceStep.objects.bulk_update(kept, ["number", "start", "end", "retired_at"], batch_size=500)
    _steps_insert(added)
    fields = {"thought_hash": digest, "steps": len(spans), "unsplittable": len(spans) < MIN_STEPS}
    if split is None:  # under the trace's row lock: no one else makes it meanwhile
        return StepSplit.objects.create(trace=trace, **fields)
    for name, value in fields.items():
        setattr(split, name, value)
    split.save(update_fields=[*fields, "split_at"])
    return split


def _steps_insert(rows: list[tuple]) -> None:
    """INSERT the new steps as plain rows (executemany): a trace has dozens of steps and
    is split on every success, where building a model instance per step cost more than the
    rest of the split."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in ("trace_id", "number", "start", "end", "text"))
    table = quote(TraceStep._meta.db_table)
    # Names from the model, values bound.
    sql = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s)"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def trace_steps_ensure(trace: Trace) -> StepSplit:
    """The trace's split, made now when its thought changed since (or was never split)."""
    split = StepSplit.objects.filter(trace=trace).first()
    if split is not None and split.thought_hash == _hash(current_thought(trace)):
        return split
    return trace_steps_split(trace_id=trace.pk)


def split_succeeded_trace(sender, trace_id: int, **kwargs) -> None:
    """A trace that succeeds is split into steps at once, through a database blip as the
    job's own writes are; a split missed even so is made when the steps are first read."""
    try:
        db_retry(lambda: trace_steps_split(trace_id=trace_id), what=f"splitting trace {trace_id}")
    except DATABASE_DOWN as error:
        logger.warning("Trace %s is split when its steps are first read: %s", trace_id, error)
