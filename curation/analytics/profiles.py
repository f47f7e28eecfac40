"""Each succeeded trace's profile: the figures the analytics aggregate, taken once per trace.

A profile is written when a trace succeeds; `profiles_fill` writes the missing ones (traces
that succeeded before the analytics existed) and `marker_count_all` counts a newly added marker
over every profiled trace. The dashboards then only run aggregates over these rows.
"""

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from expansion.markers import marker_count
from expansion.models import Trace

from ..models import Marker, MarkerCount, TraceProfile

logger = logging.getLogger(__name__)
CHUNK = 500
_TEXT_FIELDS = ("pk", "thought", "solution")


def trace_text(thought: str, solution: str) -> str:
    return f"{thought}\n{solution}"


def count_markers(text: str, markers: Iterable[Marker]) -> dict[int, int]:
    """Occurrences of each marker in a text, by marker id; markers absent are left out."""
    counts = {marker.pk: marker_count(text, marker.phrase) for marker in markers}
    return {pk: count for pk, count in counts.items() if count}


def line_count(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.strip())


def profile_trace(*, trace_id: int) -> TraceProfile | None:
    """Write (or rewrite) the profile and marker counts of one succeeded trace."""
    trace = (
        Trace.objects.filter(pk=trace_id, status=Trace.Status.SUCCEEDED)
        .only(*_TEXT_FIELDS, "completion_tokens", "checks")
        .first()
    )
    if trace is None:
        return None
    return _profiles_write([trace], list(Marker.objects.all()))[0]


def _profiles_write(traces: list[Trace], markers: list[Marker]) -> list[TraceProfile]:
    profiles = []
    counts = []
    for trace in traces:
        text = trace_text(trace.thought, trace.solution)
        profiles.append(
            TraceProfile(
                trace_id=trace.pk,
                tokens=trace.completion_tokens or 0,
                lines=line_count(text),
                coverage=trace.checks.get("coverage_mean"),
                answer_match=trace.checks.get("matches_reference") is True,  # verified
            )
        )
        counts += [
            MarkerCount(trace_id=trace.pk, marker_id=marker_id, count=count)
            for marker_id, count in count_markers(text, markers).items()
        ]
    ids = [trace.pk for trace in traces]
    with transaction.atomic():
        TraceProfile.objects.filter(trace_id__in=ids).delete()
        MarkerCount.objects.filter(trace_id__in=ids).delete()
        # A concurrent profiling of the same trace writes the same rows: keep either.
        TraceProfile.objects.bulk_create(profiles, ignore_conflicts=True)
        MarkerCount.objects.bulk_create(counts, ignore_conflicts=True)
    return profiles


def profiles_missing() -> int:
    return Trace.objects.filter(status=Trace.Status.SUCCEEDED, profile__isnull=True).count()


def profiles_fill() -> int:
    """Profile every succeeded trace that has no profile yet, a chunk at a time."""
    markers = list(Marker.objects.all())
    done = 0
    while True:
        chunk = list(
            Trace.objects.filter(status=Trace.Status.SUCCEEDED, profile__isnull=True)
            .only(*_TEXT_FIELDS, "completion_tokens", "checks")
            .order_by("pk")[:CHUNK]
        )
        if not chunk:
            return done
        _profiles_write(chunk, markers)
        done += len(chunk)


def marker_count_all(*, marker_id: int) -> int:
    """Count one marker over every profiled trace; returns how many traces carry it."""
    marker = Marker.objects.filter(pk=marker_id).first()
    if marker is None:
        return 0  # deleted meanwhile
    MarkerCount.objects.filter(marker=marker).delete()
    carrying = 0
    last = 0
    while True:
        chunk = list(
            Trace.objects.filter(profile__isnull=False, pk__gt=last)
            .order_by("pk")
            .values_list(*_TEXT_FIELDS)[:CHUNK]
        )
        if not chunk:
            break
        last = chunk[-1][0]
        counts = [
            MarkerCount(trace_id=pk, marker=marker, count=count)
            for pk, thought, solution in chunk
            if (count := marker_count(trace_text(thought, solution), marker.phrase))
        ]
        MarkerCount.objects.bulk_create(counts, ignore_conflicts=True)
        carrying += len(counts)
    Marker.objects.filter(pk=marker.pk).update(counted_at=timezone.now())
    logger.info("Marker %r counted: %s traces carry it", marker.phrase, carrying)
    return carrying
