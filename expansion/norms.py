"""The medians that relative checks compare a trace with, and the flags that follow from them.

Overthinking compares a trace's completion tokens with the median of the succeeded traces of
its problem's level; "no reflection" compares its marker density with the median of its
prompt version's traces. Neither median is worked out when a page loads:

- ``norms_refresh`` (the beat task ``expansion.tasks.refresh_norms``, every
  TRACE_NORMS_SECONDS, 300 by default; or ``manage.py traces_refresh_norms``) reads two
  numbers of every succeeded trace in chunks, stores one TraceNorm row per level and per
  prompt version, then sets ``flag_overthinking`` and ``flag_no_reflection`` on the traces
  whose flag changes: two UPDATE statements per flag, whatever the number of traces.
- A trace that succeeds meanwhile is flagged against the stored norms of that moment
  (``norms_for``: one query), so a new trace is flagged at once and the next refresh
  settles every trace as the medians move.
"""

from collections import defaultdict
from statistics import median

from django.db.models import Q
from django.utils import timezone

from .checks import Norms, overthinking_limit, reflection_floor
from .models import Trace, TraceNorm

CHUNK = 5000


def _level_key(level: int | None) -> str:
    return "" if level is None else str(level)


def norms_for(*, level: int | None, prompt_id: int) -> Norms:
    """The current norms of a trace of this problem level and prompt version."""
    rows = TraceNorm.objects.filter(
        Q(kind=TraceNorm.Kind.TOKENS_BY_LEVEL, key=_level_key(level))
        | Q(kind=TraceNorm.Kind.DENSITY_BY_PROMPT, key=str(prompt_id))
    )
    found = {row.kind: row for row in rows}
    tokens = found.get(TraceNorm.Kind.TOKENS_BY_LEVEL)
    density = found.get(TraceNorm.Kind.DENSITY_BY_PROMPT)
    return Norms(
        tokens_median=tokens.median if tokens else None,
        tokens_traces=tokens.traces if tokens else 0,
        density_median=density.median if density else None,
        density_traces=density.traces if density else 0,
    )


def norms_all() -> dict[tuple[str, str], TraceNorm]:
    return {(row.kind, row.key): row for row in TraceNorm.objects.all()}


def norms_of(trace: Trace, table: dict[tuple[str, str], TraceNorm]) -> Norms:
    """A trace's norms from ``norms_all()`` (for work on many traces: no query per trace)."""
    tokens = table.get((TraceNorm.Kind.TOKENS_BY_LEVEL,
                        _level_key(trace.annotation.problem.level)))  # fmt: skip
    density = table.get((TraceNorm.Kind.DENSITY_BY_PROMPT, str(trace.prompt_id)))
    return Norms(
        tokens_median=tokens.median if tokens else None,
        tokens_traces=tokens.traces if tokens else 0,
        density_median=density.median if density else None,
        density_traces=density.traces if density else 0,
    )


def _medians() -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    tokens, density = defaultdict(list), defaultdict(list)
    rows = (
        Trace.objects.filter(status=Trace.Status.SUCCEEDED, completion_tokens__isnull=False)
        .values_list(
            "annotation__problem__level",
            "prompt_id",
            "completion_tokens",
            "checks__reflection_density",
        )  # fmt: skip
        .order_by()
        .iterator(chunk_size=CHUNK)
    )
    for level, prompt_id, completion_tokens, reflection_density in rows:
        tokens[_level_key(level)].append(completion_tokens)
        if reflection_density is not None:
            density[str(prompt_id)].append(float(reflection_density))
    return tokens, density


def _level_q(key: str) -> Q:
    if key == "":
        return Q(annotation__problem__level__isnull=True)
    return Q(annotation__problem__level=int(key))


def _set_flag(field: str, should: Q) -> int:
    """Set ``field`` on the succeeded traces matching ``should``, clear it on the others;
    only the traces whose flag changes are written. How many changed."""
    succeeded = Trace.objects.filter(status=Trace.Status.SUCCEEDED)
    raised = succeeded.filter(should, **{field: False}).update(**{field: True})
    cleared = succeeded.filter(**{field: True}).exclude(should).update(**{field: False})
    return raised + cleared


def norms_refresh() -> dict[str, int]:
    """Recompute every norm from the succeeded traces, then the flags that depend on them.

    Returns how many traces each flag changed on.
    """
    tokens, density = _medians()
    now = timezone.now()
    rows = [
        TraceNorm(
            kind=TraceNorm.Kind.TOKENS_BY_LEVEL,
            key=key,
            median=median(values),
            traces=len(values),
            computed_at=now,
        )
        for key, values in tokens.items()
    ]
    rows += [
        TraceNorm(
            kind=TraceNorm.Kind.DENSITY_BY_PROMPT,
            key=key,
            median=median(values),
            traces=len(values),
            computed_at=now,
        )
        for key, values in density.items()
    ]
    TraceNorm.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["kind", "key"],
        update_fields=["median", "traces", "computed_at"],
    )  # fmt: skip
    TraceNorm.objects.filter(computed_at__lt=now).delete()  # groups with no trace left

    over = Q(pk__in=[])  # matches nothing, whatever is OR-ed to it
    for row in rows:
        if row.kind == TraceNorm.Kind.TOKENS_BY_LEVEL:
            limit = overthinking_limit(row.median, row.traces)
            if limit is not None:
                over |= _level_q(row.key) & Q(completion_tokens__gt=limit)
    low = Q(checks__reflection_count=0)
    for row in rows:
        if row.kind == TraceNorm.Kind.DENSITY_BY_PROMPT:
            floor = reflection_floor(row.median, row.traces)
            if floor is not None:
                low |= Q(prompt_id=int(row.key), completion_tokens__gt=0,
                         checks__reflection_density__lt=floor)  # fmt: skip
    return {
        "overthinking": _set_flag("flag_overthinking", over),
        "no_reflection": _set_flag("flag_no_reflection", low),
    }
