"""bpftrace's JSON map records as DataFrames.

Columns, by the function that fills the map:

=====================  ==================================================
``count()`` ...        key columns, then ``count`` / ``sum`` / ``min`` /
                       ``max`` / ``avg``; ``value`` for a plain assignment
``stats()``            key columns, ``count``, ``average``, ``total``
``hist()``/``lhist()`` key columns, ``slot``, ``lo``, ``hi``, ``count``
=====================  ==================================================

Key columns are named by :func:`~.script.key_column_names`. A map keyed by a
stack (``@[kstack] = count()``) gets a ``folded`` column too: the stack as
``outermost;...;innermost`` without offsets, what :func:`bpfnb.plot.flame`
draws (bpftrace itself prints stacks one frame a line, innermost first).

Histogram buckets have inclusive integer bounds ``lo .. hi``, so that
:func:`bpfnb.percentiles` and :func:`bpfnb.plot.hist` read them as they read
a BPF_HISTOGRAM's:

* log2 (``hist``): slot 0 holds 0; slot ``s >= 1`` holds ``2**(s-1) .. 2**s - 1``.
  bpftrace also counts negative values, in one bucket it prints as
  ``(..., 0)``: slot -1, ``lo`` = -2**63, ``hi`` = -1. bpftrace 0.17 puts
  every value >= 2**31 in one last bucket, whose bounds its JSON prints
  overflowed (``-2147483648 .. 0``): slot 32, ``lo`` = 2**31, ``hi`` = 2**63 - 1.
* linear (``lhist(v, min, max, step)``): slot ``k`` holds
  ``min + k*step .. min + (k+1)*step - 1``; values below ``min`` are slot -1
  (``lo`` = -2**63), values at or above ``max`` the last slot (``hi`` = 2**63 - 1).

bpftrace 0.17 joins the parts of a multi-part key with a bare comma
(``@m[pid, comm]`` prints ``"123,bash"``) and does not escape commas inside
strings, so ``"123,a, b"`` is pid 123 and comm ``"a, b"``. Integers never
contain commas: :func:`split_keys` fits integer parts first and gives the rest
to the string parts, which is exact whenever a key has at most one string part.
A part's type comes from the script (``pid`` is an integer, ``comm`` a string)
or else from the data (a part that is an integer in every key that splits one
way only).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ...decode.integers import as_integers, integers
from .script import MapInfo, key_column_names

__all__ = ["INT64_MAX", "INT64_MIN", "hist_buckets", "map_frame", "split_keys", "value_columns"]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_INT = re.compile(r"-?\d+")
_STATS = ("count", "average", "total")
_HIST_COLUMNS = ("slot", "lo", "hi", "count")
# A key part that is a stack: kstack, ustack, or either with a mode or a depth.
_STACK = re.compile(r"[ku]stack\s*(?:\(.*\))?", re.DOTALL)
_OFFSET = re.compile(r"\+\d+$")
# bpftrace 0.17's last log2 bucket: every value >= 2**31 (see the module's documentation).
_SATURATED_SLOT = 32
_Bucket = dict[str, int]


def value_columns(function: str) -> tuple[str, ...]:
    """The value columns of a map filled by ``function``."""
    if function == "stats":
        return _STATS
    if function in ("hist", "lhist"):
        return _HIST_COLUMNS
    if function in ("count", "sum", "avg", "min", "max"):
        return (function,)
    return ("value",)


def hist_buckets(
    buckets: list[_Bucket], *, linear: bool = False, params: tuple[int, int, int] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slots, inclusive bounds and counts (int64 arrays) of one histogram's JSON buckets.

    ``params`` are ``lhist``'s ``(min, max, step)`` where the script gives
    them; without them a linear histogram's slots count from its first
    bucket's alignment to its width.
    """
    n = len(buckets)
    slot, lo, hi = (np.empty(n, np.int64) for _ in range(3))
    count = np.fromiter((b["count"] for b in buckets), np.int64, n)
    if linear:
        _linear(buckets, params, slot, lo, hi)
    else:
        _log2(buckets, slot, lo, hi)
    return slot, lo, hi, count


def _log2(buckets: list[_Bucket], slot: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    previous: int | None = None
    for i, bucket in enumerate(buckets):
        low, high = bucket.get("min"), bucket.get("max")
        if low is None:
            s = -1
        elif low == 0 and high == 0:
            s = 0
        elif high is not None and low > 0 and high == 2 * low - 1 and low & (low - 1) == 0:
            s = low.bit_length()
        else:
            # Overflowed bounds (>= 2**31): buckets come in slot order, so the position tells the slot.
            s = previous + 1 if previous is not None else _SATURATED_SLOT
        if s == -1:
            lo[i], hi[i] = INT64_MIN, -1
        elif s == 0:
            lo[i], hi[i] = 0, 0
        else:
            lo[i] = 1 << (s - 1)
            hi[i] = INT64_MAX if s >= _SATURATED_SLOT and low != 1 << (s - 1) else (1 << s) - 1
        slot[i] = previous = s


def _linear(
    buckets: list[_Bucket], params: tuple[int, int, int] | None, slot: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> None:
    closed = [b for b in buckets if "min" in b and "max" in b]
    if params is not None:
        origin, _, step = params
    elif closed:
        step = closed[0]["max"] - closed[0]["min"] + 1
        under = [b for b in buckets if "min" not in b]
        origin = under[0]["max"] + 1 if under else closed[0]["min"] % step
    else:
        origin, step = 0, 1  # only open buckets: their slots are all there is to tell
    for i, bucket in enumerate(buckets):
        if "min" not in bucket:
            slot[i], lo[i], hi[i] = -1, INT64_MIN, bucket["max"]
        elif "max" not in bucket:
            slot[i], lo[i], hi[i] = (bucket["min"] - origin) // step, bucket["min"], INT64_MAX
        else:
            slot[i], lo[i], hi[i] = (bucket["min"] - origin) // step, bucket["min"], bucket["max"]


def split_keys(joined: Sequence[str], types: Sequence[str | None]) -> tuple[list[list[str]], int]:
    """Split bpftrace's comma-joined multi-part keys into one list per part.

    ``types`` are ``"int"``, ``"str"`` or None (unknown: an integer when it is
    one in every key with exactly the expected number of commas). Returns the
    parts column by column, and how many keys could be split more than one way
    (two string parts with commas in them): those take the split whose
    leftmost string is shortest.
    """
    n = len(types)
    if n <= 1:
        return [list(joined)], 0
    pieces = [k.split(",") for k in joined]
    clean = [p for p in pieces if len(p) == n]
    resolved = [t or ("str" if as_integers([p[i] for p in clean]) is None else "int") for i, t in enumerate(types)]
    columns: list[list[str]] = [[] for _ in range(n)]
    ambiguous = 0
    for parts in pieces:
        row = parts
        if len(parts) != n:
            fits = _fits(parts, resolved)
            ambiguous += len(fits) != 1
            row = fits[0] if fits else [*parts[: n - 1], ",".join(parts[n - 1 :])]
        for column, part in zip(columns, row):
            column.append(part)
    return columns, ambiguous


def _fits(pieces: list[str], types: list[str], limit: int = 2) -> list[list[str]]:
    """Up to ``limit`` ways to group comma-separated ``pieces`` into parts of ``types``."""
    found: list[list[str]] = []

    def walk(at: int, part: int, row: list[str]) -> None:
        if len(found) >= limit:
            return
        if part == len(types):
            if at == len(pieces):
                found.append(row)
            return
        if types[part] == "int":
            if at < len(pieces) and _INT.fullmatch(pieces[at]):
                walk(at + 1, part + 1, [*row, pieces[at]])
            return
        still_needed = len(types) - part - 1
        for end in range(at + 1, len(pieces) - still_needed + 1):
            walk(end, part + 1, [*row, ",".join(pieces[at:end])])

    walk(0, 0, [])
    return found


def _key_frame(keys: list[str], info: MapInfo | None, taken: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    expressions = info.keys if info and info.keys else ("",)
    names = key_column_names(expressions, taken) if info and info.keys else ["key"]
    types = info.key_types if info and info.keys else (None,)
    columns, ambiguous = split_keys(keys, types)
    frame = pd.DataFrame(index=pd.RangeIndex(len(keys)))
    for name, values, kind in zip(names, columns, types):
        numbers = integers(values) if kind == "int" else as_integers(values) if kind is None else None
        frame[name] = pd.Series(values, dtype=object) if numbers is None else numbers
    stacks = [name for name, expression in zip(names, expressions) if _STACK.fullmatch(expression.strip())]
    if len(stacks) == 1:
        frame["folded"] = frame[stacks[0]].map(dict((s, _folded(s)) for s in frame[stacks[0]].unique()))
    return frame, ambiguous


def _folded(stack: str) -> str:
    """A stack as bpftrace prints it (a frame a line, innermost first), folded outermost first."""
    frames = [_OFFSET.sub("", line.strip()) for line in stack.splitlines() if line.strip()]
    return ";".join(reversed(frames)) or "[no stack]"


def _empty(info: MapInfo | None, function: str) -> pd.DataFrame:
    values = value_columns(function)
    keys = key_column_names(info.keys, values) if info and info.keys else []
    return pd.DataFrame({c: pd.Series(dtype=object) for c in keys} | {c: pd.Series(dtype=np.int64) for c in values})


def map_frame(kind: str, data: Any, info: MapInfo | None = None) -> pd.DataFrame:
    """One map's JSON record as a DataFrame.

    Parameters
    ----------
    kind
        The record's ``type``: ``map``, ``stats`` or ``hist``.
    data
        The map's value in the record (``record["data"]["@name"]``); None for
        an empty map.
    info
        What the script says about the map (filler, key expressions,
        ``lhist`` parameters). Without it the filler is told from the record,
        and a key is one ``key`` column.

    Returns
    -------
    DataFrame
        Columns as the module's documentation lists them. Keyed counts, sums
        and the like come largest first; histograms by key and slot.
        ``attrs["ambiguous_keys"]`` counts keys :func:`split_keys` could split
        more than one way.
    """
    keyed = bool(info.keys) if info else _looks_keyed(kind, data)
    function = info.function if info else _guess_function(kind, data, keyed)
    if data is None or (keyed and not data):
        return _empty(info, function)
    values = value_columns(function)
    ambiguous = 0
    if function in ("hist", "lhist"):
        frame, ambiguous = _hist_frame(data, keyed, function == "lhist", info)
    elif not keyed:
        row = data if function == "stats" else {values[0]: data}
        frame = pd.DataFrame({c: [row[c]] for c in values})
    else:
        keys = list(data)
        frame, ambiguous = _key_frame(keys, info, values)
        if function == "stats":
            for c in values:
                frame[c] = np.fromiter((data[k][c] for k in keys), np.int64, len(keys))
        else:
            frame[values[0]] = _typed_values(list(data.values()))
        if frame[values[0]].dtype != object:
            frame = frame.sort_values(values[0], ascending=False, kind="stable", ignore_index=True)
    frame.attrs["ambiguous_keys"] = ambiguous
    return frame


def _looks_keyed(kind: str, data: Any) -> bool:
    if kind == "stats" and isinstance(data, dict):
        return set(data) != set(_STATS) or not all(isinstance(v, int) for v in data.values())
    return isinstance(data, dict)


def _guess_function(kind: str, data: Any, keyed: bool) -> str:
    """The filler of a map the script does not show (a map bpftrace printed that bpfnb did not find)."""
    if kind == "hist":
        sample = next(iter(data.values()), []) if isinstance(data, dict) else data or []
        return "lhist" if _looks_linear(sample) else "hist"
    if kind == "stats":
        sample = next(iter(data.values()), None) if keyed and isinstance(data, dict) else data
        return "stats" if isinstance(sample, dict) else "avg"
    return "value"


def _looks_linear(buckets: list[_Bucket]) -> bool:
    if any(("min" in b) != ("max" in b) and b.get("max") != -1 for b in buckets):
        return True  # an open bucket other than log2's negative one
    widths = [b["max"] - b["min"] + 1 for b in buckets if "min" in b and "max" in b and b["min"] >= 0]
    return len(widths) > 2 and len(set(widths)) == 1


def _typed_values(values: list[Any]) -> pd.Series:
    # A map's values share one type: JSON numbers for counts and sums, strings for comm and the like.
    if isinstance(values[0], int):
        return pd.Series(integers(values))
    return pd.Series(values, dtype=object)


def _hist_frame(data: Any, keyed: bool, linear: bool, info: MapInfo | None) -> tuple[pd.DataFrame, int]:
    params = info.lhist if info else None
    if not keyed:
        return pd.DataFrame(dict(zip(_HIST_COLUMNS, hist_buckets(data, linear=linear, params=params)))), 0
    keys = list(data)
    key_frame, ambiguous = _key_frame(keys, info, _HIST_COLUMNS)
    pieces = [hist_buckets(data[k], linear=linear, params=params) for k in keys]
    lengths = np.fromiter((len(p[0]) for p in pieces), np.int64, len(pieces))
    frame = key_frame.loc[key_frame.index.repeat(lengths)].reset_index(drop=True)
    for i, c in enumerate(_HIST_COLUMNS):
        frame[c] = np.concatenate([p[i] for p in pieces]) if pieces else np.empty(0, np.int64)
    return frame.sort_values([*key_frame.columns, "slot"], kind="stable", ignore_index=True), ambiguous
