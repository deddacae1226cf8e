"""From C types to numpy records to DataFrame columns, without BCC and without root.

The pipeline every reader of kernel data shares (maps, ring and perf buffers)::

    ctypes type (BCC's table.Key / table.Leaf, or a struct class)
        --dtype_of-->   numpy structured dtype with the exact C offsets
        --np.frombuffer / preallocated arrays filled by the kernel-->  records
        --to_frame-->   pandas DataFrame, one column per field

Column naming rules (:func:`columns_of`, :func:`to_frame`):

- a scalar record is one column named after its part (``key``, ``value``);
- struct fields are columns named as in C; nested structs flatten as
  ``outer.inner``; anonymous struct/union members flatten without a prefix;
- a field name present in more than one part is prefixed with the part
  (``key.pid`` and ``value.pid``);
- ``char[N]`` becomes ``str``, cut at the first NUL and decoded as UTF-8 with
  invalid bytes replaced; a single ``char`` becomes a one-character ``str``;
- every other array becomes one column whose cells are numpy arrays;
- C bit-fields become integer columns; padding (BCC's ``__pad_*``) is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .decoders import Decoder, apply_decoders
from .dtypes import BITFIELDS
from .strings import strings_from_chars

__all__ = ["columns_of", "to_frame"]

_ANON_PREFIX = "__anon"


def columns_of(records: np.ndarray, *, name: str = "value") -> dict[str, Any]:
    """Flatten an array of records into named columns, following the module's rules.

    Parameters
    ----------
    records
        A one-dimensional numpy array, structured or scalar.
    name
        The column name of a scalar record.
    """
    out: dict[str, Any] = {}
    if records.dtype.names is None:
        out[name] = _column(records)
    else:
        _flatten(records, "", out)
    return out


def _flatten(records: np.ndarray, prefix: str, out: dict[str, Any]) -> None:
    for field in records.dtype.names or ():
        sub = records[field]
        bitfields = dict(sub.dtype.metadata or {}).get(BITFIELDS)
        if bitfields:
            for bname, shift, width, signed in bitfields:
                out[prefix + bname] = _bitfield(sub, shift, width, signed)
        elif sub.dtype.names is not None and sub.ndim == 1:
            inner = prefix if field.startswith(_ANON_PREFIX) else f"{prefix}{field}."
            _flatten(sub, inner, out)
        else:
            out[prefix + field] = _column(sub)


def _bitfield(storage: np.ndarray, shift: int, width: int, signed: bool) -> np.ndarray:
    value = (storage.astype(np.int64) >> shift) & ((1 << width) - 1)
    if signed:
        value = np.where(value >= 1 << (width - 1), value - (1 << width), value)
    return value


def _column(values: np.ndarray) -> Any:
    if values.dtype.kind == "S" and values.ndim == 1:
        return strings_from_chars(values)
    if values.ndim > 1:
        cells = np.empty(len(values), dtype=object)
        cells[:] = list(np.ascontiguousarray(values))
        return cells
    return values


def to_frame(
    parts: Mapping[str, np.ndarray | Mapping[str, Any]],
    *,
    decode: Mapping[str, Decoder] | None = None,
    index: Any = None,
) -> pd.DataFrame:
    """Build a DataFrame from named record arrays of equal length.

    Parameters
    ----------
    parts
        E.g. ``{"key": keys, "value": values}``; each record array is
        flattened with :func:`columns_of`, a mapping is taken as columns
        already flattened. A column name found in two parts is prefixed with
        its part's name and a dot.
    decode
        Column decoders, see :func:`apply_decoders`.
    index
        Passed to the DataFrame.
    """
    flat = {
        part: records if isinstance(records, Mapping) else columns_of(records, name=part)
        for part, records in parts.items()
    }
    seen: dict[str, int] = {}
    for columns in flat.values():
        for column in columns:
            seen[column] = seen.get(column, 0) + 1
    merged: dict[str, Any] = {}
    for part, columns in flat.items():
        for column, values in columns.items():
            merged[f"{part}.{column}" if seen[column] > 1 else column] = values
    frame = pd.DataFrame(merged, index=index, copy=False)
    if not merged:
        frame = pd.DataFrame(index=index if index is not None else pd.RangeIndex(0))
    return apply_decoders(frame, decode) if decode else frame
