"""Formatting for the analytics figures; a figure with nothing behind it shows as a dash."""

from decimal import Decimal

from django import template

register = template.Library()
NOTHING = "—"


@register.filter
def get(mapping: dict, key):
    return mapping.get(key)


@register.filter
def rate(value: float | None) -> str:
    return NOTHING if value is None else f"{value:.2f}"


@register.filter
def percent(value: float | None) -> str:
    return NOTHING if value is None else f"{100 * value:.1f} %"


@register.filter
def money(value: Decimal | None) -> str:
    return NOTHING if value is None else f"${value:,.4f}"


@register.filter
def mean(value: float | None) -> str:
    return NOTHING if value is None else f"{value:,.1f}"


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
