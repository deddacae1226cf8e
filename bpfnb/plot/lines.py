"""Values and event rates over time, one line per key, on a time axis that reads well."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .bars import value_unit
from .figure import drawing, new_axes, no_data, require
from .labels import frame_name, row_labels
from .timeaxis import display_times, set_time_axis
from .units import COUNT, Unit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["line", "rates"]


#: How late the last events of a bin may reach user space (a consumer wakes at least every 0.1 s):
#: a bin is complete only this long after it ends.
DELIVERY = pd.Timedelta(seconds=0.25)


def _event_rates(times: pd.Series, labels: pd.Series, every: float, now: Any) -> pd.DataFrame:
    """Events per second per label in bins of ``every`` seconds, empty bins as 0.

    Bins that end after ``now`` are still filling and are left out (they
    would read as a drop that did not happen); ``now`` defaults to the
    current time, less :data:`DELIVERY`, for datetime columns (a capture that
    ended long ago keeps all its bins).
    """
    if pd.api.types.is_datetime64_any_dtype(times):
        step: Any = pd.Timedelta(seconds=every)
        grid = times.groupby([times.dt.floor(step), labels]).size().unstack(fill_value=0)
        grid = grid.reindex(pd.date_range(grid.index[0], grid.index[-1], freq=step), fill_value=0)
        if now is None:
            now = pd.Timestamp.now(tz=times.dt.tz) - DELIVERY
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
    unit: str | Unit | None = None,
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
    unit : str, optional
        The unit of ``value`` (``"ns"``, ``"bytes"``...); default: from the
        column's or the map's name, else a count.
    """
    name = frame_name(df)
    what = f"{value} per time" if value else "events per second"
    keys = [by] if isinstance(by, str) else list(by or [])
    fig, ax = new_axes(ax, title or (f"{name}: {what}" + (f" per {' / '.join(keys)}" if keys else "") if name else None))
    series = rates(df, by=by, value=value, time=time, every=every, top=top)
    if series.empty:
        no_data(ax, "rows")
        return fig
    values = COUNT if value is None else value_unit(df, value, unit)
    index = display_times(series.index) if isinstance(series.index, pd.DatetimeIndex) else series.index
    for label in series.columns:
        ax.plot(index, series[label], label=str(label)[:30], marker=".", markersize=3)
    ax.set_ylabel(value or "events/s")
    ax.set_ylim(bottom=min(0.0, float(series.min().min())))
    ax.yaxis.set_major_locator(values.locator(most=6))
    ax.yaxis.set_major_formatter(values.formatter())
    set_time_axis(ax.xaxis, index, label=time)
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


