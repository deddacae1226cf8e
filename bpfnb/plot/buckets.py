"""Histograms and heatmaps of buckets (``lo``, ``hi``, count) drawn on true scales.

Log2 buckets go on a log axis, each bar from its ``lo`` to ``hi + 1``, so
13-14 ms and 50-51 ms sit where they belong, with a gap for every empty
bucket between them; linear buckets go on a linear axis. The axis ticks are
round values of the buckets' unit (1 µs, 10 µs, 100 µs; 4 KiB, 16 KiB), and
the axis ends at the last bucket that holds anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.dates import date2num
from matplotlib.ticker import NullLocator

from ..decode.histogram import percentiles
from .figure import drawing, new_axes, no_data, require
from .heatmap_cells import HeatmapFigure
from .labels import frame_name
from .timeaxis import display_times, set_time_axis
from .units import COUNT, Unit, unit_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure

__all__ = ["bucket_edges", "bucket_unit", "heatmap", "hist", "is_log2", "percentile_labels"]


def is_log2(lo: np.ndarray, hi: np.ndarray) -> bool:
    """True for BCC's log2 buckets: ``2**(s-1) .. 2**s - 1`` (and slot 0 holding 0 only)."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    zero = (lo == 0) & (hi == 0)
    powers = (lo > 0) & (hi + 1 == 2 * lo)
    return bool(len(lo)) and bool((zero | powers).all())


def bucket_edges(lo: np.ndarray, hi: np.ndarray, *, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Where each bucket starts and ends on its axis: ``lo`` to ``hi + 1``.

    On a log axis the bucket of 0 (log2 slot 0) takes the octave below 1,
    0.5 to 1: a log axis has no 0.
    """
    left = np.asarray(lo, dtype=np.float64)
    right = np.asarray(hi, dtype=np.float64) + 1
    if log:
        left = np.where(left <= 0, right / 2, left)
    return left, right


def bucket_unit(df: pd.DataFrame, unit: str | Unit | None) -> Unit:
    """The unit of a histogram's bucket bounds: the one given, the frame's, or from the map's name."""
    name = frame_name(df)
    return unit_for("lo", given=unit, units=df.attrs.get("units"), names=[name] if name else [])


def _log_axis(df: pd.DataFrame, lo: np.ndarray, hi: np.ndarray) -> bool:
    return df.attrs.get("buckets") != "linear" and is_log2(lo, hi)


def _value_axis(ax: Axes, which: str, unit: Unit, *, log: bool, low: float, high: float) -> None:
    """Ticks of ``unit`` on the ``which`` ("x" or "y") axis, spanning ``low`` .. ``high`` and a little margin."""
    if log:
        low, high = low / 1.12, high * 1.12
    else:
        pad = (high - low) * 0.02
        low, high = (max(0.0, low - pad) if low >= 0 else low - pad), high + pad
    axis: Axis
    if which == "x":
        ax.set_xscale("log" if log else "linear")
        ax.set_xlim(low, high)
        axis = ax.xaxis
    else:
        ax.set_yscale("log" if log else "linear")
        ax.set_ylim(low, high)
        axis = ax.yaxis
    axis.set_major_locator(unit.locator(log=log))
    axis.set_major_formatter(unit.formatter(log=log))
    axis.set_minor_locator(NullLocator())


def _buckets(df: pd.DataFrame, count: str) -> pd.DataFrame:
    """Buckets summed over any other key columns, empty ends trimmed."""
    require(df, ["lo", "hi", count], "a histogram")
    summed = df.groupby(["lo", "hi"], sort=True)[count].sum().reset_index()
    nonzero = np.flatnonzero(summed[count].to_numpy() > 0)
    if not len(nonzero):
        return summed.iloc[:0]
    return summed.iloc[nonzero[0] : nonzero[-1] + 1].reset_index(drop=True)


@drawing
def hist(
    df: pd.DataFrame,
    *,
    count: str = "count",
    marks: Sequence[float] = (50, 90, 99),
    unit: str | Unit | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A histogram from buckets (columns ``lo``, ``hi``, ``count``), with percentile marks.

    Each bucket is a bar from its ``lo`` to ``hi + 1`` on a true scale: log2
    buckets on a log axis (empty buckets between full ones leave gaps),
    linear buckets on a linear one. Rows of the same bucket (a histogram
    keyed by a struct with more fields) are summed.

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
        The unit of the bucketed values (``"ns"``, ``"us"``, ``"bytes"``...);
        default: from the map's name (``latency`` is in ns), else a count.
    """
    fig, ax = new_axes(ax, title or frame_name(df) or None)
    buckets = _buckets(df, count)
    if buckets.empty:
        no_data(ax, "samples")
        return fig
    values = bucket_unit(df, unit)
    counts = buckets[count].to_numpy(dtype=float)
    lo, hi = buckets["lo"].to_numpy(dtype=float), buckets["hi"].to_numpy(dtype=float)
    log = _log_axis(df, lo, hi)
    left, right = bucket_edges(lo, hi, log=log)
    full = counts > 0
    ax.bar(left[full], counts[full], width=(right - left)[full], align="edge", color="tab:blue",
           edgecolor="white", linewidth=0.5)
    _value_axis(ax, "x", values, log=log, low=float(left[full][0]), high=float(right[full][-1]))
    ax.set_xlabel(_bucket_title(df, values))
    ax.set_ylabel(count)
    ax.yaxis.set_major_locator(COUNT.locator())
    ax.yaxis.set_major_formatter(COUNT.formatter())
    if marks:
        for (estimate, label), color in zip(_marks(buckets, count, marks, values), _MARK_COLOURS):
            ax.axvline(estimate, color=color, linestyle="--", linewidth=1, label=label)
        ax.legend(fontsize="x-small", loc="best")
    ax.set_title(f"n={COUNT.text(counts.sum())}", loc="right", fontsize="small")
    return fig


_MARK_COLOURS = ("tab:green", "tab:orange", "tab:red", "k")


def _marks(buckets: pd.DataFrame, count: str, marks: Sequence[float], unit: Unit) -> list[tuple[float, str]]:
    """Each percentile's estimate and its label, ``p99 ≈ 253 µs``."""
    estimates = percentiles(buckets[["lo", "hi"]].assign(count=buckets[count]), q=marks)
    return [(value, f"p{q:g} ≈ {unit.text(value)}") for q, value in estimates[["q", "value"]].to_numpy(dtype=float)]


def percentile_labels(
    df: pd.DataFrame, *, count: str = "count", marks: Sequence[float] = (50, 90, 99), unit: str | Unit | None = None
) -> list[str]:
    """The percentile marks :func:`hist` draws, as text: ``["p50 ≈ 381 ns", "p99 ≈ 253 µs"]``."""
    buckets = _buckets(df, count)
    return [label for _, label in _marks(buckets, count, marks, bucket_unit(df, unit))] if len(buckets) else []


def _bucket_title(df: pd.DataFrame, unit: Unit) -> str:
    """The bucket axis's label: the map's name, else what the buckets measure."""
    return frame_name(df) or {"duration": "duration", "size": "size", "count": "value"}[unit.kind]


@drawing
def heatmap(
    df: pd.DataFrame,
    *,
    value: str | None = None,
    time: str = "time",
    unit: str | Unit | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A histogram's buckets over time: time on x, bucket on y (on the buckets' true scale), colour = count.

    In a notebook a click on a cell lists the frame's rows of that time and
    bucket under the picture (:class:`~bpfnb.plot.heatmap_cells.HeatmapFigure`).

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
    unit : str, optional
        The unit of the bucketed values, as for :func:`hist`.
    """
    fig, ax = new_axes(ax, title or frame_name(df) or None, figure_class=HeatmapFigure)
    if value is None:
        value = "delta" if "delta" in df.columns else "count"
    require(df, [time, "lo", "hi", value], "a heatmap")
    # A history's first snapshot has no change yet (NaN): no column for it.
    rows = df.dropna(subset=[value])
    grid = rows.pivot_table(index=["lo", "hi"], columns=time, values=value, aggfunc="sum", fill_value=0)
    if grid.empty or not (grid.to_numpy() > 0).any():
        no_data(ax, "samples")
        return fig
    full = np.flatnonzero((grid.to_numpy() > 0).any(axis=1))
    grid = grid.iloc[full[0] : full[-1] + 1]
    lo = grid.index.get_level_values("lo").to_numpy(dtype=float)
    hi = grid.index.get_level_values("hi").to_numpy(dtype=float)
    log = _log_axis(df, lo, hi)
    y_edges, data, row_of = _rows_with_gaps(lo, hi, grid.to_numpy(dtype=float), log=log)
    x_edges, times, interval = _time_edges(pd.Index(grid.columns), df.attrs.get("interval"))
    masked = np.ma.masked_less_equal(data, 0)
    # Latency counts span decades: a log scale keeps the rare slow buckets visible.
    wide = masked.count() and masked.max() > 50 * masked.min()
    mesh = ax.pcolormesh(x_edges, y_edges, masked, cmap="viridis", shading="flat",
                         norm=LogNorm() if wide else None, rasterized=True)
    bar = fig.colorbar(mesh, ax=ax, pad=0.01)
    bar.set_label(_colour_title(value, df.attrs.get("units", {}).get(value), interval))
    if not wide:
        bar.ax.yaxis.set_major_formatter(COUNT.formatter())
    values = bucket_unit(df, unit)
    _value_axis(ax, "y", values, log=log, low=float(y_edges[0]), high=float(y_edges[-1]))
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_ylabel(_bucket_title(df, values))
    set_time_axis(ax.xaxis, times, label=time)
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.tick_params(axis="both", labelsize="x-small")
    if isinstance(fig, HeatmapFigure):
        fig.bind(ax, rows, time=time, value=value, times=pd.Index(grid.columns), buckets=grid.index, row_of=row_of,
                 y_edges=y_edges, x_edges=x_edges, unit=values)
    return fig


def _rows_with_gaps(
    lo: np.ndarray, hi: np.ndarray, data: np.ndarray, *, log: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row edges and data with an empty row wherever two buckets are not adjacent.

    Returns the edges, the data (gap rows all zero) and, for each mesh row,
    the bucket row of ``data`` it shows (-1 for a gap).
    """
    left, right = bucket_edges(lo, hi, log=log)
    edges = [left[0]]
    rows: list[np.ndarray] = []
    row_of: list[int] = []
    for i in range(len(lo)):
        if left[i] > edges[-1]:
            edges.append(left[i])
            rows.append(np.zeros(data.shape[1]))
            row_of.append(-1)
        edges.append(right[i])
        rows.append(data[i])
        row_of.append(i)
    return np.array(edges), np.array(rows), np.array(row_of)


def _time_edges(times: pd.Index, interval: Any) -> tuple[np.ndarray, pd.Index, float]:
    """Column edges on the x axis: each column's count belongs to the interval that ends at its time.

    Returns the edges (matplotlib date numbers for datetimes), the times to
    label, and the interval in seconds (the history's, else the typical step).
    """
    if isinstance(times, pd.DatetimeIndex):
        shown = display_times(times)
        seconds = ((shown - shown[0]) / pd.Timedelta(seconds=1)).to_numpy(dtype=float)
        step = _step(seconds, interval)
        first = shown[0] - pd.Timedelta(seconds=step)
        edges = np.array([date2num(first.to_pydatetime())] + [date2num(t.to_pydatetime()) for t in shown])
        return edges, shown, step
    seconds = times.to_numpy(dtype=float)
    step = _step(seconds, interval)
    return np.concatenate([[seconds[0] - step], seconds]), times, step


def _step(seconds: np.ndarray, interval: Any) -> float:
    """The interval a column covers: the history's, else the typical gap between columns, else 1 s."""
    if interval:
        return float(interval)
    return float(np.median(np.diff(seconds))) if len(seconds) > 1 else 1.0


def _colour_title(value: str, declared: Any, interval: float) -> str:
    """What a heatmap's colour counts: events per interval, per second, or in total."""
    if value == "rate" or str(declared).endswith("/s"):
        return "events per second"
    if value == "count":
        return "events (total so far)"
    return f"events per {Unit('duration').text(interval)}"

