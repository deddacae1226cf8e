"""Printed text lines to a DataFrame: one row a line, its ``key=value`` pairs as columns.

A line ``exec pid=12 comm=sh`` becomes ``time`` (when it arrived, UTC),
``text`` (the line), ``pid`` = 12 and ``comm`` = ``"sh"``. A value runs from
``=`` to white space or one of ``,;)]}``, or is a double-quoted string. A
column whose every value is a decimal integer holds integers (nullable
``Int64`` when some lines lack the key); any other holds strings. A key named
``time`` or ``text`` gets a trailing ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .integers import as_integers

__all__ = ["text_frame"]

_PAIR = re.compile(r'(?<![^\s,;(\[{])([A-Za-z_][A-Za-z0-9_.]*)=(?!=)("(?:[^"\\]|\\.)*"|[^\s,;)\]}]*)')
_RESERVED = ("time", "text")


def _column(values: list[str | None]) -> pd.Series:
    """Integers where every value given is one (nullable where some are missing), else strings."""
    given = [v for v in values if v is not None]
    numbers = as_integers(given)
    if numbers is None:
        return pd.Series(values, dtype=object)
    if len(given) == len(values):
        return pd.Series(numbers)
    missing = np.fromiter((v is None for v in values), bool, len(values))
    full = np.zeros(len(values), numbers.dtype)
    full[~missing] = numbers
    return pd.Series(pd.arrays.IntegerArray(full, missing))


def text_frame(lines: Sequence[tuple[int, str]]) -> pd.DataFrame:
    """Lines as a frame: ``time`` (datetime64[ns, UTC]), ``text``, then one column per key in order of first appearance.

    ``lines`` are (arrival time in ns since the epoch, text) pairs.
    """
    rows = len(lines)
    times = np.fromiter((t for t, _ in lines), np.int64, rows)
    texts = [text for _, text in lines]
    columns: dict[str, list[str | None]] = {}
    findall = _PAIR.findall
    for i, text in enumerate(texts):
        if "=" not in text:
            continue
        for key, value in findall(text):
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * rows
            column[i] = value[1:-1] if value[:1] == '"' and len(value) > 1 else value
    frame: dict[str, object] = {
        "time": pd.to_datetime(times, unit="ns", utc=True),
        "text": pd.Series(texts, dtype=object),
    }
    for key, values in columns.items():
        frame[key + "_" if key in _RESERVED else key] = _column(values)
    return pd.DataFrame(frame)
