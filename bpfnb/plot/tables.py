"""Tables of frames as a person reads them: the rows a live table shows, and their HTML with units.

Quantities are written in their units (``1.2 µs``, ``4 KiB``, ``12,345``);
ids (pids, slots, stack ids, keys) stay as they are, and pids of a frame
without ``comm`` get their process names beside them.
"""

from __future__ import annotations

import pandas as pd

from .figure import value_column
from .labels import frame_name, pid_columns, with_process_names
from .units import COUNT, Unit, known_unit

__all__ = ["readable", "table", "table_html"]

# Columns that are counts when nothing else says what they are.
_COUNTS = {"value", "count", "counts", "delta", "rate", "total", "calls", "events", "packets", "samples"}


def _unit_of(df: pd.DataFrame, column: str) -> Unit | None:
    """The unit to write a column in, or None to leave it as it is."""
    if df[column].dtype.kind not in "iuf" or str(column).endswith("_raw"):
        return None
    name = frame_name(df)
    # The map's name describes its values and buckets, not its keys.
    names = [name] if name and column in ("value", "lo", "hi") else []
    unit = known_unit(str(column), units=df.attrs.get("units"), names=names)
    if unit is None and str(column).rsplit(".", 1)[-1] in _COUNTS:
        unit = COUNT
    return unit


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its quantities written in their units and its pids named, as text (for display only)."""
    out = df.copy()
    for column in df.columns:
        unit = _unit_of(df, column)
        if unit is not None:
            out[column] = [unit.text(v) if pd.notna(v) else "" for v in df[column]]
    for column in pid_columns(df, list(df.columns)):
        out[column] = with_process_names(df[column])
    return out


def table_html(
    df: pd.DataFrame, *, max_rows: int | None = None, max_cols: int | None = None, index: bool = True
) -> str:
    """The first ``max_rows`` rows of ``df`` as an HTML table of :func:`readable` text."""
    shown = df.head(max_rows) if max_rows is not None else df
    return readable(shown).to_html(max_cols=max_cols, border=0, classes="bpfnb-table", index=index)


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
