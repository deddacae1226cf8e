"""Bars of a map's top keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .figure import drawing, new_axes, no_data, value_column
from .labels import frame_name, key_columns, pid_columns, row_labels, value_title
from .units import Unit, unit_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["bar", "top_keys", "value_unit"]


def value_unit(df: pd.DataFrame, value: str, unit: str | Unit | None = None) -> Unit:
    """The unit of a frame's ``value`` column: the one given, the frame's, or from the column's and map's names."""
    name = frame_name(df)
    return unit_for(value, given=unit, units=df.attrs.get("units"), names=[name] if name else [])


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
        The column(s) naming a row; default ``key`` or every other column. Pids
        are labelled with their process names when the frame has no ``comm``.
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
    plain = row_labels(df, keys, pids=())
    best = df[value].groupby(plain, sort=False).sum().nlargest(top, keep="first")
    labels = best.index.astype(str).to_numpy()
    pids = pid_columns(df, keys)
    if pids:  # process names are read for the rows shown only
        first = ~plain.duplicated()
        shown = df[first].set_axis(plain[first].to_numpy()).loc[best.index]
        labels = row_labels(shown, keys, pids=pids).to_numpy()
    return pd.DataFrame({"label": labels, "value": best.to_numpy()})


def _what_per(df: pd.DataFrame, value: str, unit: Unit, keys: Sequence[str]) -> str:
    """A title for bars: ``counts: count per comm``."""
    name = frame_name(df)
    what = f"{value_title(value, unit)} per {' / '.join('pid' if k == 'key' and k in pid_columns(df, keys) else k for k in keys)}"
    return f"{name}: {what}" if name else what


@drawing
def bar(
    df: pd.DataFrame,
    *,
    value: str | None = None,
    key: str | Sequence[str] | None = None,
    top: int = 10,
    unit: str | Unit | None = None,
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
        Rows with the same label are summed; pids get their process names.
    top : int, optional
        How many bars to draw.
    unit : str, optional
        The unit of the values (``"ns"``, ``"bytes"``...); default: from the
        column's or the map's name, else a count.
    """
    column = value_column(df, value) if not df.empty else (value or "value")
    keys = key_columns(df, key, column) if not df.empty else []
    values = value_unit(df, column, unit)
    fig, ax = new_axes(ax, title or _what_per(df, column, values, keys))
    best = top_keys(df, value=value, key=key, top=top)
    if best.empty:
        no_data(ax, "rows")
        return fig
    positions = np.arange(len(best))[::-1]
    ax.barh(positions, best["value"], color="tab:blue")
    ax.set_yticks(positions, [label[:40] for label in best["label"]], fontsize="small")
    for y, v in zip(positions, best["value"]):
        ax.text(v, y, " " + values.text(v), va="center", fontsize="x-small")
    ax.set_xlabel(value_title(column, values))
    ax.xaxis.set_major_locator(values.locator(most=6))
    ax.xaxis.set_major_formatter(values.formatter())
    ax.margins(x=0.14)
    return fig
