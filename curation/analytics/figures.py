"""The figures each analytics page shows, with their links, cached and refreshed in the background.

Computing a dashboard at 100,000 traces takes about a second of aggregates, so pages show
cached figures with the time they were computed:

- the figures that do not depend on the chosen traces (funnel, cost, people) are one entry,
  the trace profile of each scope and grouping another, each comparison of two a third;
- once figures are older than ANALYTICS_CACHE_SECONDS, the next request still gets them at
  once and a worker computes new ones (one refresh per entry at a time); the beat schedule
  also refreshes the default dashboard every ANALYTICS_CACHE_SECONDS, so it is always warm;
- figures older than ``stale_after()`` (five times that, at least five minutes: the workers
  are down or far behind) are not shown: the request computes new ones.
"""

import hashlib
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import charts, metrics, rollouts
from .profiles import profiles_missing

logger = logging.getLogger(__name__)
REFRESH_SECONDS = 120  # a refresh not done by then (a busy or stopped worker) is sent again
SCOPE_PARAMS = {"prompt_id": "prompt", "endpoint__model": "model"}
DEFAULT_ENTRIES = [("overview",), ("profile", "prompt", ""), ("choices",)]


def stale_after() -> int:
    return max(300, 5 * settings.ANALYTICS_CACHE_SECONDS)


def traces_url(**params) -> str:
    """The drill-down list filtered by ``params`` (None values left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
    return f"{reverse('analytics-traces')}?{query}"


def scope_params(scope: dict) -> dict:
    return {SCOPE_PARAMS[lookup]: value for lookup, value in scope.items()}


def _marker_links(rates: dict, scope: dict) -> dict:
    base = scope_params(scope)
    group_param = {"prompt": "prompt", "model": "model"}.get(rates["group"])
    for row in rates["rows"]:
        for cell in row["cells"]:
            params = {**base, **({group_param: cell["column"]} if group_param else {})}
            cell["has_href"] = traces_url(**params, has=row["marker"].phrase)
            cell["lacks_href"] = traces_url(**params, lacks=row["marker"].phrase)
    return rates


def overview() -> dict:
    """The figures of the whole platform: funnel, cost and tokens, people."""
    return {
        "funnel": metrics.funnel(),
        "costs": metrics.costs(),
        "annotators": metrics.annotators(),
        "reviewers": metrics.reviewers(),
        "missing": profiles_missing(),
    }


def profile(group: str, scope_value: str) -> dict:
    """The trace profile of the chosen traces: histograms and marker rates."""
    scope = metrics.parse_scope(scope_value) or {}
    base = scope_params(scope)
    return {
        "tokens": charts.histogram_chart(
            metrics.histogram("tokens", scope), _("completion tokens"),
            lambda low, high: traces_url(**base, tokens_min=low, tokens_max=high)),
        "lines": charts.histogram_chart(
            metrics.histogram("lines", scope), _("lines"),
            lambda low, high: traces_url(**base, lines_min=low, lines_max=high)),
        "markers": _marker_links(metrics.marker_rates(scope), scope),
        "markers_by_group": _marker_links(metrics.marker_rates(scope, group), scope),
    }  # fmt: skip


def _side(scope_value: str) -> dict:
    scope = metrics.parse_scope(scope_value) or {}
    figures = metrics.side(scope)
    base = scope_params(scope)
    figures["links"] = {
        "traces": traces_url(**base),
        "approved": traces_url(**base, review="approved"),
        "matched": traces_url(**base, answer_match="true"),
        "profiled": traces_url(**base, profiled="true"),
    }
    _marker_links(figures["markers"], scope)
    return figures


def comparison(a: str, b: str) -> dict:
    """Two prompt versions or models side by side, their markers row by row."""
    sides = [_side(a), _side(b)]
    rows = [
        {"marker": one["marker"], "a": one["cells"][0], "b": other["cells"][0]}
        for one, other in zip(sides[0]["markers"]["rows"], sides[1]["markers"]["rows"],
                              strict=True)
    ]  # fmt: skip
    return {"sides": sides, "marker_rows": rows}


COMPUTATIONS = {
    "overview": overview,
    "profile": profile,
    "comparison": comparison,
    "choices": metrics.scope_choices,
    "campaigns": rollouts.campaigns_comparison,
}


def _key(kind: str, args: tuple) -> str:
    return "analytics:" + hashlib.sha256(repr((kind, *args)).encode()).hexdigest()


def figures_compute(kind: str, *args: str) -> dict:
    """Compute one entry's figures now and keep them for the next requests."""
    started = timezone.now()  # the figures are at least as old as the start of their queries
    entry = {"figures": COMPUTATIONS[kind](*args), "computed_at": started}
    cache.set(_key(kind, args), entry, stale_after())
    return entry


def figures_refresh(kind: str, *args: str) -> None:
    """What the worker runs: new figures, then the next refresh may be sent."""
    figures_compute(kind, *args)
    cache.delete(f"{_key(kind, args)}:refreshing")


def figures_get(kind: str, *args: str, fresh: bool = False) -> dict:
    """Cached figures (with ``computed_at`` and ``refreshing``), computed when none will do."""
    from .tasks import refresh_figures

    key = _key(kind, args)
    entry = None if fresh else cache.get(key)
    if entry is None:
        return {**figures_compute(kind, *args), "refreshing": False}
    age = (timezone.now() - entry["computed_at"]).total_seconds()
    refreshing = age > settings.ANALYTICS_CACHE_SECONDS
    if refreshing and cache.add(f"{key}:refreshing", True, REFRESH_SECONDS):
        try:
            refresh_figures.delay(kind, *args)
        except Exception:  # the broker is down: the page still shows what it has
            logger.exception("Could not send the refresh of analytics %s%s", kind, args)
            cache.delete(f"{key}:refreshing")
    return {**entry, "refreshing": refreshing}


def defaults_refresh() -> None:
    """Keep the default dashboard and the comparison choices warm (run by the beat schedule)."""
    for kind, *args in DEFAULT_ENTRIES:
        figures_refresh(kind, *args)
