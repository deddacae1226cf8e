"""One frame of a live plot: the data it shows and its PNG, drawn with :mod:`bpfnb.plot`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import plot
from ..errors import ArgumentError
from ..plot.buckets import percentile_labels
from ..plot.figure import frame_png

__all__ = ["KINDS", "MIN_INTERVAL", "check_kind", "draw_frame", "frame_summary"]

#: What a live widget can draw.
KINDS = ("bar", "hist", "heatmap", "line", "table", "flame")
#: The shortest refresh interval in seconds: a plot is not a busy loop.
MIN_INTERVAL = 0.2

# Margins for figures drawn without a layout engine: a constrained layout
# measures every text in an extra draw, which doubles the cost of a frame.
_MARGINS = {
    "bar": dict(left=0.12, right=0.95, bottom=0.13, top=0.92),
    "hist": dict(left=0.1, right=0.98, bottom=0.15, top=0.92),
    "heatmap": dict(left=0.12, right=0.98, bottom=0.15, top=0.92),
    "line": dict(left=0.1, right=0.98, bottom=0.15, top=0.92),
    "flame": dict(left=0.02, right=0.98, bottom=0.13, top=0.92),
}


def check_kind(kind: str, interval: float) -> None:
    """Raise an :class:`ArgumentError` naming the choices for a bad kind or interval."""
    if kind not in KINDS:
        raise ArgumentError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not interval >= MIN_INTERVAL:
        raise ArgumentError(f"interval must be at least {MIN_INTERVAL} s, not {interval!r}")


def draw_frame(
    kind: str, frame: pd.DataFrame, *, top: int, title: str | None, options: dict[str, Any]
) -> tuple[pd.DataFrame, bytes]:
    """The rows a frame shows (ranked bars, rates, the table) and its PNG (none for a table)."""
    options = dict(options)
    if kind in ("bar", "line", "table"):
        options["top"] = top
    if kind == "table":
        return plot.table(frame, **options), b""
    margins = dict(_MARGINS[kind])
    if kind == "bar":
        data = plot.top_keys(frame, **_pick(options, "value", "key", "top"))
        longest = int(data["label"].str.len().max()) if len(data) else 0
        margins["left"] = min(0.4, 0.03 + 0.0095 * min(longest, 40))
    elif kind == "line":
        data = plot.rates(frame, **_pick(options, "by", "value", "time", "every", "top"))
    elif kind == "flame" and options.get("stacks") is not None:
        # The stack map changes with the counts: read it for every frame.
        stacks = options["stacks"]
        options["stacks"] = stacks.df() if callable(getattr(stacks, "df", None)) else stacks
        data = frame if frame.empty else plot.with_stacks(frame, options["stacks"], **_pick(options, "stack_id"))
    else:
        data = frame
    return data, frame_png(getattr(plot, kind), frame, margins=margins, title=title, **options)


def frame_summary(kind: str, data: pd.DataFrame, options: dict[str, Any]) -> str:
    """A line of text for the status line: a histogram's percentiles (``p50 ≈ 381 ns · p99 ≈ 253 µs``)."""
    count = options.get("count", "count")
    if kind != "hist" or data.empty or not {"lo", "hi", count} <= set(data.columns):
        return ""
    return " · ".join(percentile_labels(data, **_pick(options, "count", "marks", "unit")))


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: options[name] for name in names if name in options}
