"""The medians that relative checks compare a trace with, and the flags that follow from them.

Overthinking compares a trace's completion tokens with the median of the succeeded traces of
problems like its own: of the same pass rate where rollouts measured one, else of the same
level. The pass rate is that of the workspace's difficulty campaign (the admin's "lease
campaign" setting, which "Next problem" orders by too), grouped in CHECK_PASS_RATE_BUCKETS
equal ranges (0-20%, ..., 80-100% by default); a trace whose range has fewer than
CHECK_NORM_MIN_TRACES traces is compared with its level instead. "No reflection" compares
its marker density with the median of its prompt version's traces. No median is worked out
when a page loads:

- ``norms_refresh`` (the beat task ``expansion.tasks.refresh_norms``, every
  TRACE_NORMS_SECONDS, 300 by default; or ``manage.py traces_refresh_norms``) reads a few
  numbers of every succeeded trace in chunks, stores one TraceNorm row per level, per pass
  rate range and per prompt version, then sets ``flag_overthinking`` and
  ``flag_no_reflection`` on the traces whose flag changes: two UPDATE statements per flag,
  whatever the number of traces.
- A trace that succeeds meanwhile is flagged against the stored norms of that moment
  (``norms_for``: one query, two with a difficulty campaign), so a new trace is flagged at
  once and the next refresh settles every trace as the medians and pass rates move.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from statistics import median

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotator.models import WorkspaceSettings

from .checks import Norms, overthinking_limit, reflection_floor
from .models import ProblemDifficulty, Trace, TraceNorm

CHUNK = 5000
NOTHING = Q(pk__in=[])  # matches nothing, whatever is OR-ed to it


def _level_key(level: int | None) -> str:
    return "" if level is None else str(level)


def difficulty_campaign() -> int | None:
    """The campaign whose pass rates group traces for overthinking (None: by level only)."""
    return WorkspaceSettings.current().lease_campaign


def pass_rate_bucket(rate: float) -> int:
    """The range a pass rate falls in: the highest b with rate >= b / buckets (the same
    comparison the SQL of ``_bucket_problems`` makes, so both agree on every float)."""
    buckets = settings.CHECK_PASS_RATE_BUCKETS
    return next(b for b in range(buckets - 1, -1, -1) if rate >= b / buckets)


def bucket_label(bucket: int) -> str:
    buckets = settings.CHECK_PASS_RATE_BUCKETS
    return f"{round(100 * bucket / buckets)}–{round(100 * (bucket + 1) / buckets)}%"


def _bucket_key(campaign: int, bucket: int) -> str:
    return f"{campaign}:{bucket}"


def _difficulties(campaign: int):
    return ProblemDifficulty.objects.filter(
        campaign_id=campaign, verified__gt=0, pass_rate__isnull=False
    )


def _bucket_problems(campaign: int, bucket: int):
    """The problems whose pass rate in the campaign falls in the range (a subquery)."""
    buckets = settings.CHECK_PASS_RATE_BUCKETS
    rows = _difficulties(campaign).filter(pass_rate__gte=bucket / buckets)
    if bucket < buckets - 1:
        rows = rows.filter(pass_rate__lt=(bucket + 1) / buckets)
    return rows.values("problem_id")


def _norms(level_row, bucket_row, density_row, bucket: int | None) -> Norms:
    """The tokens norm of the pass rate range where it has enough traces, else the level's."""
    by_rate = bucket_row is not None and overthinking_limit(bucket_row.median, bucket_row.traces)
    tokens = bucket_row if by_rate else level_row
    return Norms(
        tokens_median=tokens.median if tokens else None,
        tokens_traces=tokens.traces if tokens else 0,
        density_median=density_row.median if density_row else None,
        density_traces=density_row.traces if density_row else 0,
        pass_rate_range=bucket_label(bucket) if by_rate else None,
    )


def norms_for(*, level: int | None, prompt_id: int, problem_id: int | None = None) -> Norms:
    """The current norms of a trace of this problem (its level and, with a difficulty
    campaign, its pass rate) and prompt version."""
    wanted = Q(kind=TraceNorm.Kind.TOKENS_BY_LEVEL, key=_level_key(level)) | Q(
        kind=TraceNorm.Kind.DENSITY_BY_PROMPT, key=str(prompt_id)
    )
    campaign, bucket = difficulty_campaign(), None
    if campaign is not None and problem_id is not None:
        rate = (
            _difficulties(campaign)
            .filter(problem_id=problem_id)
            .values_list("pass_rate", flat=True)
            .first()
        )
        if rate is not None:
            bucket = pass_rate_bucket(rate)
            wanted |= Q(kind=TraceNorm.Kind.TOKENS_BY_PASS_RATE, key=_bucket_key(campaign, bucket))
    found = {row.kind: row for row in TraceNorm.objects.filter(wanted)}
    return _norms(
        found.get(TraceNorm.Kind.TOKENS_BY_LEVEL),
        found.get(TraceNorm.Kind.TOKENS_BY_PASS_RATE),
        found.get(TraceNorm.Kind.DENSITY_BY_PROMPT),
        bucket,
    )


@dataclass
class NormTable:
    """Every norm and the difficulty campaign's pass rates, for work on many traces."""

    rows: dict[tuple[str, str], TraceNorm]
    campaign: int | None = None
    pass_rates: dict[int, float] = field(default_factory=dict)


def _pass_rates(campaign: int | None) -> dict[int, float]:
    if campaign is None:
        return {}
    return dict(_difficulties(campaign).values_list("problem_id", "pass_rate").iterator(CHUNK))


def norms_all() -> NormTable:
    campaign = difficulty_campaign()
    return NormTable(
        rows={(row.kind, row.key): row for row in TraceNorm.objects.all()},
        campaign=campaign,
        pass_rates=_pass_rates(campaign),
    )


def norms_of(trace: Trace, table: NormTable) -> Norms:
    """A trace's norms from ``norms_all()`` (for work on many traces: no query per trace)."""
    problem = trace.annotation.problem
    rate = table.pass_rates.get(problem.pk)
    bucket = None if rate is None else pass_rate_bucket(rate)
    return _norms(
        table.rows.get((TraceNorm.Kind.TOKENS_BY_LEVEL, _level_key(problem.level))),
        None if bucket is None
        else table.rows.get((TraceNorm.Kind.TOKENS_BY_PASS_RATE,
                             _bucket_key(table.campaign, bucket))),
        table.rows.get((TraceNorm.Kind.DENSITY_BY_PROMPT, str(trace.prompt_id))),
        bucket,
    )  # fmt: skip


def _medians(campaign: int | None):
    tokens, by_rate, density = defaultdict(list), defaultdict(list), defaultdict(list)
    rates = _pass_rates(campaign)
    rows = (
        Trace.objects.filter(status=Trace.Status.SUCCEEDED, completion_tokens__isnull=False)
        .values_list(
            "annotation__problem_id",
            "annotation__problem__level",
            "prompt_id",
            "completion_tokens",
            "checks__reflection_density",
        )  # fmt: skip
        .order_by()
        .iterator(chunk_size=CHUNK)
    )
    for problem_id, level, prompt_id, completion_tokens, reflection_density in rows:
        tokens[_level_key(level)].append(completion_tokens)
        if (rate := rates.get(problem_id)) is not None:
            by_rate[_bucket_key(campaign, pass_rate_bucket(rate))].append(completion_tokens)
        if reflection_density is not None:
            density[str(prompt_id)].append(float(reflection_density))
    return tokens, by_rate, density


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
    campaign = difficulty_campaign()
    tokens, by_rate, density = _medians(campaign)
    now = timezone.now()
    rows = [
        TraceNorm(kind=kind, key=key, median=median(values), traces=len(values), computed_at=now)
        for kind, groups in (
            (TraceNorm.Kind.TOKENS_BY_LEVEL, tokens),
            (TraceNorm.Kind.TOKENS_BY_PASS_RATE, by_rate),
            (TraceNorm.Kind.DENSITY_BY_PROMPT, density),
        )
        for key, values in groups.items()
    ]
    TraceNorm.objects.bulk_create(
        rows, update_conflicts=True, unique_fields=["kind", "key"],
        update_fields=["median", "traces", "computed_at"],
    )  # fmt: skip
    # Groups with no trace left, and the ranges of a campaign no longer the difficulty one.
    TraceNorm.objects.filter(computed_at__lt=now).delete()

    over, by_range = NOTHING, []
    for row in rows:
        limit = overthinking_limit(row.median, row.traces)
        if row.kind == TraceNorm.Kind.TOKENS_BY_PASS_RATE and limit is not None:
            bucket = int(row.key.split(":")[1])
            in_range = Q(annotation__problem__in=_bucket_problems(campaign, bucket))
            over |= in_range & Q(completion_tokens__gt=limit)
            by_range.append(in_range)
    # A trace whose pass rate range has enough traces is judged by that range alone.
    by_level = ~reduce(or_, by_range) if by_range else Q()
    for row in rows:
        if row.kind == TraceNorm.Kind.TOKENS_BY_LEVEL:
            limit = overthinking_limit(row.median, row.traces)
            if limit is not None:
                over |= _level_q(row.key) & Q(completion_tokens__gt=limit) & by_level
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
