"""Histograms as SVG geometry computed on the server; the template draws them (no JavaScript)."""

from collections.abc import Callable

WIDTH, HEIGHT, TOP, BOTTOM = 640, 200, 16, 28  # viewBox units; the plot sits between margins


def histogram_chart(histogram: dict, unit: str, href: Callable[[int, int], str]) -> dict:
    """Bars with their position, size, label and drill-down link, from `metrics.histogram`."""
    bars = histogram["bars"]
    if not bars:
        return {**histogram, "unit": unit, "bars": [], "svg_width": WIDTH, "svg_height": HEIGHT}
    slot = WIDTH / len(bars)
    plot = HEIGHT - TOP - BOTTOM
    tallest = histogram["tallest"] or 1
    drawn = []
    for bar in bars:
        height = round(plot * bar["count"] / tallest, 1)
        x = round(slot * len(drawn), 1)
        drawn.append({
            **bar, "href": href(bar["low"], bar["high"]),
            "x": x + 1, "y": round(TOP + plot - height, 1), "w": round(slot - 2, 1), "h": height,
            "label_x": round(x + slot / 2, 1), "count_y": round(TOP + plot - height - 3, 1),
        })  # fmt: skip
    return {**histogram, "unit": unit, "bars": drawn, "svg_width": WIDTH, "svg_height": HEIGHT,
            "axis_y": HEIGHT - BOTTOM, "label_y": HEIGHT - BOTTOM + 14}  # fmt: skip
