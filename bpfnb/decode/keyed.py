"""Which columns of a map's frame are keys and which are values, and frames added up by key.

A map's frame mixes the columns that identify an entry (its key fields, a
histogram's buckets, the ``host`` of a cluster's frame) with the numbers it
holds. Histories take deltas of the values per key; a cluster, or a capture
of one, adds the values of equal keys across hosts.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

import pandas as pd

__all__ = ["split_columns", "summed"]


def split_columns(frame: pd.DataFrame, value_columns: Collection[str]) -> tuple[list[str], list[str]]:
    """Key columns (they identify a row across snapshots and hosts) and numeric value columns of a map's frame.

    ``value_columns`` are the map view's (``view.value_columns``); a
    histogram's frame has ``lo``, ``hi`` and others as keys, ``count`` as its
    one value.
    """
    if {"lo", "hi", "count"} <= set(frame.columns):
        return [c for c in frame.columns if c != "count"], ["count"]

    def field(column: str) -> str:
        """The value field a column shows (``value.x``, ``x.cpu1``, ``x_raw`` -> ``x``)."""
        return re.sub(r"\.cpu\d+$", "", column.removesuffix("_raw")).removeprefix("value.")

    from_value = [c for c in frame.columns if field(c) in value_columns]
    values = [c for c in from_value if frame[c].dtype.kind in "iuf" and not c.endswith("_raw")]
    keys = [c for c in frame.columns if c not in from_value and _identifies(frame[c])]
    return keys, values


def _identifies(column: pd.Series) -> bool:
    """Whether a key column can tell rows apart across snapshots: numbers or strings (a comm), not arrays."""
    return column.dtype != object or all(isinstance(value, str) for value in column)


def summed(frame: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """One row per key: ``values`` added up over the rows with equal ``keys`` (one row if there are no keys).

    Raises ValueError naming the columns that are neither, since they cannot be added.
    """
    others = [c for c in frame.columns if c not in keys and c not in values]
    if others:
        raise ValueError(f"{', '.join(others)} {'is' if len(others) == 1 else 'are'} not a key or a number")
    if not keys:
        return pd.DataFrame([frame[list(values)].sum()])
    added: pd.DataFrame = frame.groupby(list(keys), sort=True, dropna=False, observed=True)[list(values)].sum().reset_index()
    return added
