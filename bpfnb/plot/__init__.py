"""Plots of the DataFrames bpfnb produces, as plain functions.

The live widgets (``.live()`` on maps and streams) draw with these same
functions, so a plot made after a capture looks like the live one::

    import bpfnb.plot
    bpfnb.plot.bar(prog["counts"].df(), top=10)
    bpfnb.plot.hist(prog["dist"].df())           # lo, hi, count buckets
    bpfnb.plot.heatmap(prog["dist"].history().df())
    bpfnb.plot.line(stream.df(), by="comm")       # events per second per comm
    bpfnb.plot.flame(prog["counts"].df(), stacks=prog["stack_traces"].df())

Each function returns a :class:`matplotlib.figure.Figure` that shows itself as
SVG (and PNG) in a notebook; pass ``ax=`` to draw into an existing Axes
instead. Heatmaps and flame graphs are interactive in a notebook: click a
heatmap's cell to list its rows; hover, zoom and search a flame graph. The
figures stay out of pyplot and are drawn under one lock (see
:mod:`bpfnb.plot.figure`), so drawing from a background thread is safe.

Numbers are written in their units (:mod:`bpfnb.plot.units`): durations in
ns/µs/ms/s, sizes in B/KiB/MiB, counts with thousands separators; give
``unit=`` where a column's name does not say it.
"""

from __future__ import annotations

from .bars import bar, top_keys
from .buckets import heatmap, hist
from .figure import render_png, render_svg
from .flame import FlameFigure, flame, flame_rectangles, with_stacks
from .heatmap_cells import HeatmapFigure
from .lines import line, rates
from .tables import readable, table, table_html
from .units import Unit, parse_unit

__all__ = [
    "FlameFigure",
    "HeatmapFigure",
    "Unit",
    "bar",
    "flame",
    "flame_rectangles",
    "heatmap",
    "hist",
    "line",
    "parse_unit",
    "rates",
    "readable",
    "render_png",
    "render_svg",
    "table",
    "table_html",
    "top_keys",
    "with_stacks",
]
