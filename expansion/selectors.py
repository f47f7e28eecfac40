"""Reads of traces. ``traces_matching`` is the one trace filter; every list of traces
(the job list, the trace API, the review queue, the analytics drill-down, the export) is
built on it, with the values of ``filters.TraceFilterForm``."""

from collections.abc import Iterable
from datetime import date, datetime, time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.postgres.search import SearchQuery
from django.db import connections
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from annotator.models import Annotation

from .models import LLMEndpoint, PromptVersion, Trace


def _moment(value: date | datetime | None) -> datetime | None:
    """A day means its local midnight; a datetime stands as it is."""
    if value is None or isinstance(value, datetime):
        return value
    return timezone.make_aware(datetime.combine(value, time.min))


def between(field: str, low, high) -> Q:
    """``low <= field < high``, each bound left out when it is None."""
    q = Q()
    if low is not None:
        q &= Q(**{f"{field}__gte": low})
    if high is not None:
        q &= Q(**{f"{field}__lt": high})
    return q


def traces_matching(
    *,
    status: str = "",
    annotation: int | None = None,
    endpoint: int | str | None = None,
    prompt: int | None = None,
    model: str = "",
    annotator: int | None = None,
    source: str = "",
    subject: str = "",
    level: int | None = None,
    created_since: date | datetime | None = None,
    created_until: date | datetime | None = None,
    finished_since: date | datetime | None = None,
    finished_until: date | datetime | None = None,
    checks: Iterable[str] = (),
    clear: Iterable[str] = (),
    simulated: bool | None = None,
    q: str = "",
) -> QuerySet[Trace]:
    """Traces matching every filter given (each is off when left at its default).

    ``endpoint`` is an id or a name; ``checks`` are the checks that flagged the trace and
    ``clear`` those it passed (a trace that did not succeed passed none); days are local
    midnights, ``*_until`` exclusive. The order is the caller's.
    """
    filters = Q()
    for lookup, value in (("status", status), ("annotation_id", annotation),
                          ("prompt_id", prompt), ("endpoint__model", model),
                          ("annotation__annotator_id", annotator),
                          ("annotation__problem__source", source),
                          ("annotation__problem__subject", subject),
                          ("annotation__problem__level", level),
                          ("is_simulated", simulated)):  # fmt: skip
        if value not in (None, ""):
            filters &= Q(**{lookup: value})
    if endpoint not in (None, ""):
        by_name = isinstance(endpoint, str) and not endpoint.isdigit()
        filters &= Q(**{"endpoint__name" if by_name else "endpoint_id": endpoint})
    filters &= between("created_at", _moment(created_since), _moment(created_until))
    filters &= between("finished_at", _moment(finished_since), _moment(finished_until))
    for name in checks:
        filters &= Q(**{Trace.FLAGS[name]: True})
    for name in clear:
        filters &= Q(status=Trace.Status.SUCCEEDED, **{Trace.FLAGS[name]: False})
    traces = Trace.objects.filter(filters)
    return with_text(traces, q) if q else traces


def with_text(traces: QuerySet[Trace], text: str) -> QuerySet[Trace]:
    """Traces whose thought or solution has all these words (PostgreSQL, indexed; any case),
    or contains this text (other databases)."""
    if connections[traces.db].vendor == "postgresql":
        return traces.filter(search=SearchQuery(text, config="simple"))
    return traces.filter(Q(thought__icontains=text) | Q(solution__icontains=text))


def filter_choices() -> dict[str, tuple[str, list[tuple[int, str]]]]:
    """What the select lists of the trace filters offer: ``{field: (blank label, options)}``."""
    annotators = get_user_model().objects.filter(
        Exists(Annotation.objects.filter(annotator=OuterRef("pk")))
    )
    return {
        "endpoint": (_("Any endpoint"), list(LLMEndpoint.objects.values_list("pk", "name"))),
        "prompt": (_("Any prompt version"),
                   [(p.pk, str(p)) for p in PromptVersion.objects.only("name", "version")]),
        "annotator": (_("Any annotator"), [(u.pk, u.get_username()) for u in annotators]),
    }  # fmt: skip


def trace_norms(trace: Trace) -> dict:
    """What a trace's relative checks compare it with, for its page: the median tokens of
    its problem's pass rate range (``pass_rate_range``, see expansion.norms) or else level,
    and the median marker density of its prompt version, each with the traces behind it and
    the limit that flags (None while too few traces exist)."""
    from .checks import overthinking_limit, reflection_floor
    from .norms import norms_for

    problem = trace.annotation.problem
    norms = norms_for(level=problem.level, prompt_id=trace.prompt_id, problem_id=problem.pk)
    return {
        "tokens_median": norms.tokens_median, "tokens_traces": norms.tokens_traces,
        "tokens_limit": overthinking_limit(norms.tokens_median, norms.tokens_traces),
        "pass_rate_range": norms.pass_rate_range,
        "density_median": norms.density_median, "density_traces": norms.density_traces,
        "density_floor": reflection_floor(norms.density_median, norms.density_traces),
        "min_traces": settings.CHECK_NORM_MIN_TRACES,
    }  # fmt: skip
