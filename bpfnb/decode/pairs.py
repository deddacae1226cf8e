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

__all__ = ["parse_pairs", "text_frame"]

_PAIR = re.compile(r'(?<![^\s,;(\[{])([A-Za-z_][A-Za-z0-9_.]*)=(?!=)("(?:[^"\\]|\\.)*"|[^\s,;)\]}]*)')
_RESERVED = ("time", "text")


def _unquoted(value: str) -> str:
    return value[1:-1] if value.startswith('"') and len(value) > 1 else value


def parse_pairs(text: str) -> dict[str, str]:
    """The ``key=value`` pairs of one line, values as written (quotes removed).

    Examples
    --------
    >>> parse_pairs('exec pid=12 comm=sh file="a b"')
    {'pid': '12', 'comm': 'sh', 'file': 'a b'}
    """
    return {key: _unquoted(value) for key, value in _PAIR.findall(text)}


def _column(values: list[str | None]) -> pd.Series:
    series = pd.Series(values, dtype=object)
    present = series.notna()
    given = series[present]
    if len(given) and given.str.fullmatch(r"-?\d+").all():
        numbers = pd.to_numeric(given)
        if present.all():
            return numbers
        if numbers.dtype == np.int64:
            return numbers.astype("Int64").reindex(series.index)
    return series


def text_frame(lines: Sequence[tuple[int, str]]) -> pd.DataFrame:
    """Lines as a frame: ``time`` (datetime64[ns, UTC]), ``text``, then one column per key in order of first appearance.

    ``lines`` are (arrival time in ns since the epoch, text) pairs.
    """
    rows = len(lines)
    times = np.fromiter((t for t, _ in lines), np.int64, rows)
    texts = [text for _, text in lines]
    columns: dict[str, list[str | None]] = {}
    for i, text in enumerate(texts):
        if "=" not in text:
            continue
        for key, value in parse_pairs(text).items():
            column = columns.get(key)
            if column is None:
                column = columns[key] = [None] * rows
            column[i] = value
    frame: dict[str, object] = {
        "time": pd.to_datetime(times, unit="ns", utc=True),
        "text": pd.Series(texts, dtype=object),
    }
    for key, values in columns.items():
        frame[key + "_" if key in _RESERVED else key] = _column(values)
    return pd.DataFrame(frame)
