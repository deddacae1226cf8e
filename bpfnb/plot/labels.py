"""Names next to numbers: which columns name a row, their labels with process names, and plot titles.

A bar keyed by pid reads ``1234 (nginx)``: pids get the process name from
``/proc`` at display time (see :mod:`bpfnb.kernel.processes`) unless the
frame has its own ``comm``. A decoded column (``errno``, ``syscall``...) is
labelled by its name, not by the ``<column>_raw`` number kept beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from ..kernel.processes import process_names
from .figure import require
from .units import Unit

__all__ = ["frame_name", "key_columns", "pid_columns", "row_labels", "value_title", "with_process_names"]

# Columns that hold pids (``pid``, ``key.pid``, ``parent_pid``, ``tgid``).
_PID = re.compile(r"(?:^|[._])(?:pid|tgid|tid|ppid)$")
# Columns that already name the process.
_NAMES = ("comm", "task", "process")
# Words in a map's name saying that its plain key is a pid (``pids``, ``per_pid``, ``bytes_by_pid``).
_PID_WORDS = re.compile(r"(?:^|_)(?:pid|pids|tgid|tid)(?:_|$)")


def frame_name(df: pd.DataFrame) -> str:
    """The name of the map a frame was read from (``attrs["name"]``), or empty."""
    return str(df.attrs.get("name") or "")


def _has_names(df: pd.DataFrame) -> bool:
    return any(c == n or c.endswith("." + n) for c in map(str, df.columns) for n in _NAMES)


def pid_columns(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Those of ``columns`` that hold pids of a frame with no process names of its own.

    None in a frame read from a capture (``attrs["recorded"]``): its pids
    were another machine's, or another time's, and name no process here.
    """
    if _has_names(df) or df.attrs.get("recorded"):
        return []
    found = [c for c in columns if _PID.search(str(c)) and df[c].dtype.kind in "iu"]
    name = frame_name(df)
    if "key" in columns and name and _PID_WORDS.search(name.lower()) and df["key"].dtype.kind in "iu":
        found.append("key")
    return found


def with_process_names(values: pd.Series) -> pd.Series:
    """Pids as ``1234 (nginx)``; pids whose name is unknown stay bare."""
    pids = values.unique()
    names = process_names(pids)
    text = {p: f"{p} ({names[p]})" if p in names else str(p) for p in pids}
    return values.map(text).astype(str)


def key_columns(df: pd.DataFrame, key: str | Sequence[str] | None, value: str) -> list[str]:
    """The columns that name a row: ``key`` if given, else ``key``, the frame's key fields, or every other column.

    A decoded column's ``<column>_raw`` twin is left out: the name says it.
    """
    if key is not None:
        keys = [key] if isinstance(key, str) else list(key)
        require(df, keys, "this plot")
        return keys
    if "key" in df.columns:
        return ["key"]
    named = df.attrs.get("key_columns")
    if named:
        return [c for c in named if c in df.columns]
    return [
        c for c in df.columns
        if c != value and c not in ("time", "cpu") and not (str(c).endswith("_raw") and str(c)[:-4] in df.columns)
    ]


def row_labels(df: pd.DataFrame, columns: Sequence[str], *, pids: Sequence[str] | None = None) -> pd.Series:
    """One text label per row, joining the given key columns.

    The ``pids`` columns (default: :func:`pid_columns`) read ``1234 (nginx)``.
    """
    if not columns:
        return pd.Series([str(i) for i in df.index], index=df.index)
    named = set(pid_columns(df, columns) if pids is None else pids)
    parts = [with_process_names(df[c]) if c in named else df[c].astype(str) for c in columns]
    label = parts[0]
    for part in parts[1:]:
        label = label + " / " + part
    return label


def value_title(value: str, unit: Unit) -> str:
    """What a value column is, for an axis: ``count``, ``bytes``, ``time``, or the column's own name."""
    if value not in ("value", "count", "counts"):
        return value
    return {"count": "count", "size": "bytes", "duration": "time"}[unit.kind]
