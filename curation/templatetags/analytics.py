"""Formatting for the analytics figures; a figure with nothing behind it shows as a dash."""

from collections.abc import Callable
from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()
NOTHING = "—"


@register.filter
def get(mapping: dict, key):
    return mapping.get(key)


def _or_nothing(name: str, show: Callable[[Any], str]) -> None:
    register.filter(name, lambda value: NOTHING if value is None else show(value))


_or_nothing("rate", lambda value: f"{value:.2f}")
_or_nothing("percent", lambda value: f"{100 * value:.1f} %")
_or_nothing("money", lambda value: f"${value:,.4f}")
_or_nothing("mean", lambda value: f"{value:,.1f}")


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return NOTHING
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


@register.filter
def getlist(query, key: str) -> list:
    return query.getlist(key) if hasattr(query, "getlist") else []


@register.filter
def is_list(value) -> bool:
    return isinstance(value, list)


@register.simple_tag
def cost_figure(row: dict, key: str = "cost") -> str:
    """A cost with what it rests on: unknown without prices, ≈ on estimated token counts."""
    value = row.get(key)
    if value is None:
        if not (row.get("answered") and row.get("unpriced") == row["answered"]):
            return NOTHING  # nothing to show or to divide by
        return format_html('<span class="muted" title="{}">unknown</span>',
                           "No prices are set for the endpoint of these traces")  # fmt: skip
    shown = f"${value:,.4f}"
    if row.get("estimated"):
        shown = format_html('≈ {} <small class="muted">({} on estimated tokens)</small>',
                            shown, row["estimated"])  # fmt: skip
    if row.get("unpriced"):
        shown = format_html('{} <small class="muted">+ {} unpriced</small>', shown,
                            row["unpriced"])  # fmt: skip
    return format_html("{}", shown)
