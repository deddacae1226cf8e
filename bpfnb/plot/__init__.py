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
a PNG in a notebook; pass ``ax=`` to draw into an existing Axes instead. The
figures stay out of pyplot and are drawn under one lock (see
:mod:`bpfnb.plot.figure`), so drawing from a background thread is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

from ..decode.histogram import percentiles
from .figure import (
    HUMAN_TICKS,
    drawing,
    human,
    key_columns,
    new_axes,
    no_data,
    render_png,
    require,
    row_labels,
    value_column,
)
from .flame import flame, flame_rectangles, with_stacks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "bar",
    "flame",
    "flame_rectangles",
    "heatmap",
    "hist",
    "line",
    "rates",
    "render_png",
    "table",
    "top_keys",
    "with_stacks",
]

def top_keys(
    df: pd.DataFrame,
    *,
    value: str | None = None,
    key: str | Sequence[str] | None = None,
    top: int = 10,
) -> pd.DataFrame:
    """The ``top`` largest rows by ``value``, summed per key, as columns label, value.

    Parameters
    ----------
    df : pandas.DataFrame
        A map snapshot (``key``/``value`` columns, or struct fields).
    value : str, optional
        The column to rank by; default ``value``, ``count`` or the last numeric one.
    key : str or list of str, optional
        The column(s) naming a row; default ``key`` or every other column.
    top : int, optional
        How many rows to keep.

    Returns
    -------
    pandas.DataFrame
        Columns ``label`` and ``value``, largest first.
    """
    if df.empty:
        return pd.DataFrame({"label": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
    value = value_column(df, value)
    keys = key_columns(df, key, value)
    summed = df.assign(label=row_labels(df, keys)).groupby("label", sort=False)[value].sum()
    best = summed.nlargest(top, keep="first")
    return pd.DataFrame({"label": best.index.astype(str), "value": best.to_numpy()})


@drawing
def bar(
    df: pd.DataFrame,
    *,
    value: str | None = None,
    key: str | Sequence[str] | None = None,
    top: int = 10,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Horizontal bars of the ``top`` keys by ``value``, largest at the top.

    Parameters
    ----------
    df : pandas.DataFrame
        A map snapshot (``key``/``value`` columns, or struct fields).
    value : str, optional
        The column for the bar lengths; default ``value``, ``count`` or the last
        numeric column.
    key : str or list of str, optional
        The column(s) that label a bar; default ``key`` or all other columns.
        Rows with the same label are summed.
    top : int, optional
        How many bars to draw.
    """
    fig, ax = new_axes(ax, title)
    best = top_keys(df, value=value, key=key, top=top)
    if best.empty:
        no_data(ax, "rows")
        return fig
    positions = np.arange(len(best))[::-1]
    ax.barh(positions, best["value"], color="tab:blue")
    ax.set_yticks(positions, [label[:40] for label in best["label"]], fontsize="small")
    for y, v in zip(positions, best["value"]):
        ax.text(v, y, " " + human(v), va="center", fontsize="x-small")
    ax.set_xlabel(value_column(df, value))
    ax.xaxis.set_major_formatter(HUMAN_TICKS)
    ax.margins(x=0.12)
    return fig


def _buckets(df: pd.DataFrame, count: str) -> pd.DataFrame:
    """Buckets summed over any other key columns, empty ends trimmed."""
    require(df, ["lo", "hi", count], "a histogram")
    summed = df.groupby(["lo", "hi"], sort=True)[count].sum().reset_index()
    nonzero = np.flatnonzero(summed[count].to_numpy() > 0)
    if not len(nonzero):
        return summed.iloc[:0]
    return summed.iloc[nonzero[0] : nonzero[-1] + 1].reset_index(drop=True)


def _percentile_marks(buckets: pd.DataFrame, count: str, pcts: Sequence[float]) -> list[tuple[float, float, float]]:
    """For each percentile: itself, its position on the bucket axis and its estimated value."""
    estimates = percentiles(buckets[["lo", "hi"]].assign(count=buckets[count]), q=pcts)
    index = {lo: i for i, lo in enumerate(buckets["lo"].to_numpy(dtype=float))}
    marks = []
    for q, lo, hi, value in estimates[["q", "lo", "hi", "value"]].to_numpy(dtype=float):
        fraction = (value - lo) / (hi - lo) if hi > lo else 0.5
        marks.append((q, index[lo] - 0.5 + fraction, value))
    return marks


@drawing
def hist(
    df: pd.DataFrame,
    *,
    count: str = "count",
    marks: Sequence[float] = (50, 90, 99),
    unit: str = "",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A histogram from buckets (columns ``lo``, ``hi``, ``count``), with percentile marks.

    Log2 and linear buckets draw alike: one bar per bucket, labelled with its
    range, empty buckets at both ends left out (as BCC's ``print_log2_hist``
    does). Rows of the same bucket (a histogram keyed by a struct with more
    fields) are summed.

    Parameters
    ----------
    df : pandas.DataFrame
        Buckets with inclusive bounds ``lo`` .. ``hi`` and a count column.
    count : str, optional
        The count column.
    marks : sequence of float, optional
        Percentiles to mark, estimated by interpolating inside their bucket
        (see :func:`bpfnb.percentiles`).
    unit : str, optional
        The unit of the bucketed values (``"ns"``, ``"bytes"``), for the labels.
    """
    fig, ax = new_axes(ax, title)
    buckets = _buckets(df, count)
    if buckets.empty:
        no_data(ax, "samples")
        return fig
    counts = buckets[count].to_numpy(dtype=float)
    lo, hi = buckets["lo"].to_numpy(dtype=float), buckets["hi"].to_numpy(dtype=float)
    positions = np.arange(len(buckets))
    ax.bar(positions, counts, width=0.9, color="tab:blue")
    labels = [human(a) if a == b else f"{human(a)}-{human(b)}" for a, b in zip(lo, hi)]
    ax.set_xticks(positions, labels, rotation=45, ha="right", fontsize="x-small")
    ax.set_xlabel(f"value ({unit})" if unit else "value")
    ax.set_ylabel(count)
    ax.yaxis.set_major_formatter(HUMAN_TICKS)
    lines = _percentile_marks(buckets, count, marks) if marks else []
    for (pct, x, estimate), color in zip(lines, ("tab:green", "tab:orange", "tab:red", "k")):
        ax.axvline(x, color=color, linestyle="--", linewidth=1, label=f"p{pct:g} ≈ {human(estimate)} {unit}".rstrip())
    if lines:
        ax.legend(fontsize="x-small", loc="best")
    ax.set_title(f"n={human(counts.sum())}", loc="right", fontsize="small")
    return fig


@drawing
def heatmap(
    df: pd.DataFrame,
    *,
    value: str | None = None,
    time: str = "time",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A histogram's buckets over time: time on x, bucket on y, colour = count.

    Parameters
    ----------
    df : pandas.DataFrame
        A long frame with ``time``, ``lo``, ``hi`` and a count column, such as
        the history of a histogram map.
    value : str, optional
        The colour column; default ``delta`` (the count in each interval) if
        present, else ``count``.
    time : str, optional
        The time column (datetime or seconds).
    """
    fig, ax = new_axes(ax, title)
    if value is None:
        value = "delta" if "delta" in df.columns else "count"
    require(df, [time, "lo", "hi", value], "a heatmap")
    # A history's first snapshot has no change yet (NaN): no column for it.
    df = df.dropna(subset=[value])
    grid = df.pivot_table(index=["lo", "hi"], columns=time, values=value, aggfunc="sum", fill_value=0)
    if grid.empty or not (grid.to_numpy() > 0).any():
        no_data(ax, "samples")
        return fig
    rows = np.flatnonzero((grid.to_numpy() > 0).any(axis=1))
    grid = grid.iloc[rows[0] : rows[-1] + 1]
    times = pd.Index(grid.columns)
    x = np.arange(len(times) + 1)
    y = np.arange(len(grid) + 1)
    data = np.ma.masked_less_equal(grid.to_numpy(dtype=float), 0)
    # Latency counts span decades: a log scale keeps the rare slow buckets visible.
    wide = data.count() and data.max() > 50 * data.min()
    mesh = ax.pcolormesh(x, y, data, cmap="viridis", shading="flat", norm=LogNorm() if wide else None)
    fig.colorbar(mesh, ax=ax, label=value, pad=0.01)
    ax.set_yticks(y[:-1] + 0.5, [f"{human(a)}-{human(b)}" for a, b in grid.index], fontsize="x-small")
    step = max(1, len(times) // 6)
    ticks = np.arange(0, len(times), step)
    ax.set_xticks(ticks + 0.5, [_time_label(times[int(i)]) for i in ticks], fontsize="x-small")
    ax.set_xlabel(time)
    return fig


def _time_label(t: Any) -> str:
    if isinstance(t, pd.Timestamp):
        return t.strftime("%H:%M:%S")
    return human(float(t))


def _event_rates(times: pd.Series, labels: pd.Series, every: float, now: Any) -> pd.DataFrame:
    """Events per second per label in bins of ``every`` seconds, empty bins as 0.

    Bins that end after ``now`` are still filling and are left out; ``now``
    defaults to the current time for datetime columns (a capture that ended
    long ago keeps all its bins).
    """
    if pd.api.types.is_datetime64_any_dtype(times):
        step: Any = pd.Timedelta(seconds=every)
        grid = times.groupby([times.dt.floor(step), labels]).size().unstack(fill_value=0)
        grid = grid.reindex(pd.date_range(grid.index[0], grid.index[-1], freq=step), fill_value=0)
        if now is None:
            now = pd.Timestamp.now(tz=times.dt.tz)
    else:
        # Whole bin numbers, so that empty bins line up exactly with full ones.
        step = every
        number = np.floor(times.to_numpy(dtype=float) / every).astype(np.int64)
        grid = times.groupby([number, labels]).size().unstack(fill_value=0)
        grid = grid.reindex(np.arange(grid.index[0], grid.index[-1] + 1), fill_value=0)
        grid.index = grid.index * every
    if now is not None:
        grid = grid[grid.index + step <= now]
    return grid / every


@drawing
def line(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    value: str | None = None,
    time: str = "time",
    every: float = 1.0,
    top: int = 5,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Values or event rates over time, one line per key, for the ``top`` keys.

    Two kinds of frames are drawn:

    - events (a stream's rows), ``value=None``: the rows are counted in bins
      of ``every`` seconds per ``by`` key and drawn as events per second. A
      bin still filling is left out (see :func:`rates`).
    - values over time (a map's history), ``value="rate"`` for example: that
      column is drawn per ``by`` key (default ``key``), summed per time.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame with a ``time`` column (datetime or seconds).
    by : str or list of str, optional
        The column(s) naming a line. Default: one line for everything (events),
        or ``key`` (values).
    value : str, optional
        The column to draw; ``None`` draws event rates.
    time : str, optional
        The time column.
    every : float, optional
        Bin width in seconds for event rates.
    top : int, optional
        How many lines to draw: the keys with the largest totals.
    """
    fig, ax = new_axes(ax, title)
    series = rates(df, by=by, value=value, time=time, every=every, top=top)
    if series.empty:
        no_data(ax, "rows")
        return fig
    for label in series.columns:
        ax.plot(series.index, series[label], label=str(label)[:30], marker=".", markersize=3)
    ax.set_ylabel(value or "events/s")
    ax.set_ylim(bottom=min(0.0, float(series.min().min())))
    ax.yaxis.set_major_formatter(HUMAN_TICKS)
    if isinstance(series.index, pd.DatetimeIndex):
        locator = AutoDateLocator(tz=series.index.tz)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=series.index.tz))
    ax.set_xlabel(time)
    if len(series.columns) > 1 or series.columns[0] != "all":
        ax.legend(fontsize="x-small", loc="upper left")
    ax.tick_params(axis="x", labelsize="x-small")
    return fig


def rates(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    value: str | None = None,
    time: str = "time",
    every: float = 1.0,
    top: int = 5,
    now: Any = None,
) -> pd.DataFrame:
    """The data :func:`line` draws: one column per key, indexed by time.

    Parameters are those of :func:`line`, and ``now``: for event rates,
    bins that end after it are still filling and are left out (default: the
    current time for datetime columns, nothing left out for numbers).

    Returns
    -------
    pandas.DataFrame
        Events per second (``value=None``) or the summed ``value``, per time
        and key; the ``top`` keys by total.
    """
    if df.empty:
        return pd.DataFrame()
    require(df, [time], "a line plot")
    keys = [by] if isinstance(by, str) else list(by or [])
    if value is None:
        labels = row_labels(df, keys) if keys else pd.Series("all", index=df.index)
        grid = _event_rates(df[time], labels, every, now)
    else:
        keys = keys or (["key"] if "key" in df.columns else [])
        require(df, [value, *keys], "a line plot")
        # A history's first snapshot has no change to show yet (NaN), not a change of 0.
        df = df.dropna(subset=[value])
        if df.empty:
            return pd.DataFrame()
        labels = row_labels(df, keys) if keys else pd.Series(value, index=df.index)
        grid = df.groupby([df[time], labels])[value].sum().unstack(fill_value=0)
    best = grid.sum().nlargest(top, keep="first").index
    return grid[best]


def table(
    df: pd.DataFrame,
    *,
    sort: str | None = None,
    top: int = 20,
    ascending: bool = False,
) -> pd.DataFrame:
    """The rows a live table shows: sorted by ``sort``, the first ``top``.

    Parameters
    ----------
    df : pandas.DataFrame
        Any frame bpfnb produced.
    sort : str, optional
        The column to sort by; default ``value``, ``count`` or the last numeric
        column. Frames with no numeric column keep their order.
    top : int, optional
        How many rows to keep.
    ascending : bool, optional
        Sort smallest first.

    Returns
    -------
    pandas.DataFrame
    """
    if df.empty:
        return df
    try:
        column = value_column(df, sort)
    except ValueError:
        if sort is not None:
            raise
        return df.head(top)
    return df.sort_values(column, ascending=ascending, kind="stable").head(top)
