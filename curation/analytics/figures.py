"""The figures each analytics page shows, with their links, cached and refreshed in the background.

Computing a dashboard at 100,000 traces takes about a second of aggregates, so pages show
cached figures with the time they were computed. Once figures are older than
ANALYTICS_CACHE_SECONDS, the next request still gets them at once and a worker computes new
ones (one refresh per page at a time); only figures older than STALE_SECONDS, or none at all,
are computed during the request. "Recompute now" (``fresh``) always computes.
"""

import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from . import charts, metrics
from .profiles import profiles_missing

STALE_SECONDS = 3600  # older figures are not shown, even while a refresh is under way
REFRESH_SECONDS = 120  # a refresh not done by then (a busy or stopped worker) is sent again
SCOPE_PARAMS = {"prompt_id": "prompt", "endpoint__model": "model"}


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


def dashboard(group: str, scope_value: str) -> dict:
    scope = metrics.parse_scope(scope_value) or {}
    base = scope_params(scope)
    return {
        "funnel": metrics.funnel(),
        "costs": metrics.costs(),
        "tokens": charts.histogram_chart(
            metrics.histogram("tokens", scope), "completion tokens",
            lambda low, high: traces_url(**base, tokens_min=low, tokens_max=high)),
        "lines": charts.histogram_chart(
            metrics.histogram("lines", scope), "lines",
            lambda low, high: traces_url(**base, lines_min=low, lines_max=high)),
        "markers": _marker_links(metrics.marker_rates(scope), scope),
        "markers_by_group": _marker_links(metrics.marker_rates(scope, group), scope),
        "annotators": metrics.annotators(),
        "reviewers": metrics.reviewers(),
        "scope_choices": metrics.scope_choices(),
        "missing": profiles_missing(),
    }  # fmt: skip


def side(scope_value: str) -> dict:
    """One side of the comparison: a prompt version or a model."""
    scope = metrics.parse_scope(scope_value) or {}
    figures = metrics.side(scope)
    base = scope_params(scope)
    figures["links"] = {
        "traces": traces_url(**base),
        "approved": traces_url(**base, review="approved"),
        "matched": traces_url(**base, answer_match="true"),
        "profiled": traces_url(**base, status="succeeded"),
    }
    _marker_links(figures["markers"], scope)
    return figures


COMPUTATIONS = {"dashboard": dashboard, "side": side, "choices": metrics.scope_choices}


def _key(kind: str, args: tuple) -> str:
    return "analytics:" + hashlib.sha256(repr((kind, *args)).encode()).hexdigest()


def figures_compute(kind: str, *args: str) -> dict:
    """Compute one page's figures now and keep them for the next requests."""
    entry = {"figures": COMPUTATIONS[kind](*args), "computed_at": timezone.now()}
    key = _key(kind, args)
    cache.set(key, entry, STALE_SECONDS)
    cache.delete(f"{key}:refreshing")
    return entry


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
        refresh_figures.delay(kind, *args)
    return {**entry, "refreshing": refreshing}
