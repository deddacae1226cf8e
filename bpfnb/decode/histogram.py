"""Histograms kept in maps: buckets as a frame, percentiles, a text rendering.

A BPF histogram is a map from a bucket slot to a count. With BCC's log2
convention (``bpf_log2l``, ``dist.increment(bpf_log2l(v))``) slot 0 holds the
value 0 and slot ``s >= 1`` holds ``2**(s-1) .. 2**s - 1``, as BCC's
``print_log2_hist`` prints it. Linear slots of width ``step`` hold
``s*step .. (s+1)*step - 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ArgumentError

__all__ = ["bucket_bounds", "histogram_frame", "percentiles", "text_histogram"]

_BUCKETS = ("log2", "linear")


def bucket_bounds(slots: np.ndarray, *, buckets: str = "log2", step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive lower and upper value of each slot, as uint64 arrays."""
    slots = np.asarray(slots).astype(np.uint64)
    if buckets == "log2":
        one = np.uint64(1)
        lo = np.where(slots == 0, 0, np.left_shift(one, np.maximum(slots, one) - one)).astype(np.uint64)
        # 2*lo - 1 wraps to 2**64 - 1 for slot 64, the last log2 bucket of a u64.
        hi = np.where(slots == 0, 0, lo * np.uint64(2) - one).astype(np.uint64)
        return lo, hi
    if buckets == "linear":
        if step < 1:
            raise ArgumentError(f"step must be a positive integer, not {step!r}")
        lo = slots * np.uint64(step)
        return lo, lo + np.uint64(step - 1)
    raise ArgumentError(f"buckets must be one of {_BUCKETS}, not {buckets!r}")


def histogram_frame(
    frame: pd.DataFrame,
    *,
    slot: str,
    count: str,
    buckets: str = "log2",
    step: int = 1,
) -> pd.DataFrame:
    """Turn a map's frame (a slot column and a count column) into buckets.

    Parameters
    ----------
    frame
        The map's DataFrame.
    slot, count
        Names of the slot and count columns; any other column (the rest of a
        struct key, e.g. ``comm``) is kept and leads the result.
    buckets
        ``"log2"`` (BCC's convention) or ``"linear"``.
    step
        The width of a linear bucket.

    Returns
    -------
    DataFrame
        The other key columns, then ``slot``, ``lo``, ``hi``, ``count``,
        sorted by those key columns and slot.
    """
    slots = frame[slot].to_numpy()
    lo, hi = bucket_bounds(slots, buckets=buckets, step=step)
    others = [c for c in frame.columns if c not in (slot, count)]
    columns = {c: frame[c].array for c in others}
    columns.update(slot=slots, lo=lo, hi=hi, count=frame[count].to_numpy())
    out = pd.DataFrame(columns, copy=False)
    if others or not (np.diff(slots.astype(np.int64)) > 0).all():  # arrays come in slot order
        out = out.sort_values([*others, "slot"], kind="stable", ignore_index=True)
    out.attrs["buckets"] = buckets
    return out


def percentiles(hist: pd.DataFrame, q: Sequence[float] = (50, 90, 99)) -> pd.DataFrame:
    """Estimate percentiles from buckets, with the bounds the buckets allow.

    The estimate interpolates linearly inside the bucket where the percentile
    falls; the true value lies between that bucket's ``lo`` and ``hi``.

    Parameters
    ----------
    hist
        A frame with ``lo``, ``hi`` and ``count`` (from ``.df()`` of a
        histogram map). Other columns (e.g. ``comm``) group the buckets into
        separate distributions.
    q
        Percentiles in 0..100.

    Returns
    -------
    DataFrame
        One row per group and percentile: the group's columns, ``q``,
        ``value`` (estimate), ``lo`` and ``hi`` (bounds), ``total`` (samples).
    """
    for value in q:
        if not 0 <= value <= 100:
            raise ArgumentError(f"percentiles are between 0 and 100, not {value!r}")
    if not isinstance(hist, pd.DataFrame):
        raise ArgumentError(f"percentiles take a DataFrame of histogram buckets, not {type(hist).__name__}")
    missing = [c for c in ("lo", "hi", "count") if c not in hist.columns]
    if missing:
        raise ArgumentError(
            f"percentiles need histogram buckets (columns lo, hi, count); this frame lacks {', '.join(missing)}",
            hint="take the frame of a histogram map (BPF_HISTOGRAM), or ask for buckets: .df(buckets='log2')",
        )
    groups = [c for c in hist.columns if c not in ("slot", "lo", "hi", "count")]
    rows = []
    parts = hist.groupby(groups, sort=True) if groups else [((), hist)]
    for key, part in parts:
        key = key if isinstance(key, tuple) else (key,)
        part = part.sort_values("lo")
        counts = part["count"].to_numpy(dtype=np.float64)
        lo = part["lo"].to_numpy(dtype=np.float64)
        hi = part["hi"].to_numpy(dtype=np.float64)
        cumulative = np.cumsum(counts)
        total = cumulative[-1] if len(cumulative) else 0.0
        for value in q:
            row = dict(zip(groups, key))
            row.update(q=value, total=int(total))
            if total == 0:
                row.update(value=np.nan, lo=np.nan, hi=np.nan)
            else:
                rank = value / 100 * total
                i = min(int(np.searchsorted(cumulative, rank, side="left")), len(counts) - 1)
                while counts[i] == 0 and i + 1 < len(counts):
                    i += 1
                before = cumulative[i] - counts[i]
                fraction = (rank - before) / counts[i] if counts[i] else 0.0
                row.update(value=lo[i] + fraction * (hi[i] - lo[i]), lo=lo[i], hi=hi[i])
            rows.append(row)
    return pd.DataFrame(rows, columns=[*groups, "q", "value", "lo", "hi", "total"])


def text_histogram(hist: pd.DataFrame, *, title: str = "value", max_lines: int = 64) -> str:
    """Render buckets as text, line for line as BCC's ``print_log2_hist`` /
    ``print_linear_hist`` print them (log2 slot 0, which BCC never prints,
    shows as ``0 -> 0`` when it is not empty).

    Other key columns give one block each, headed ``column = value``. At most
    ``max_lines`` bucket lines per block are shown.
    """
    linear = hist.attrs.get("buckets") == "linear"
    groups = [c for c in hist.columns if c not in ("slot", "lo", "hi", "count")]
    blocks = []
    parts = hist.groupby(groups, sort=True) if groups else [((), hist)]
    for key, part in parts:
        key = key if isinstance(key, tuple) else (key,)
        lines = [f"{g} = {k}" for g, k in zip(groups, key)]
        counts = dict(zip(part["slot"].astype(int), part["count"].astype(int)))
        lines += _linear_lines(counts, title, max_lines) if linear else _log2_lines(counts, title, max_lines)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _stars(count: int, peak: int, width: int) -> str:
    return "*" * min(width, int(width * count / peak)) if peak else ""


def _log2_lines(counts: dict[int, int], title: str, max_lines: int) -> list[str]:
    used = [s for s, c in counts.items() if c > 0]
    if not used:
        return ["(empty)"]
    top, peak = max(used), max(counts.values())
    wide = top > 32
    header = f"{'':15}{title:<29} : count     distribution" if wide else f"{'':5}{title:<19} : count     distribution"
    digits, width = (20, 20) if wide else (10, 40)
    lines = [header]
    first = 0 if counts.get(0, 0) else 1
    for slot in range(first, top + 1):
        low, high = ((1 << slot) >> 1, (1 << slot) - 1) if slot else (0, 0)
        if low == high and slot:
            low -= 1
        count = counts.get(slot, 0)
        lines.append(f"{low:>{digits}} -> {high:<{digits}} : {count:<8} |{_stars(count, peak, width):<{width}}|")
    return _capped(lines, max_lines)


def _linear_lines(counts: dict[int, int], title: str, max_lines: int) -> list[str]:
    used = [s for s, c in counts.items() if c > 0]
    if not used:
        return ["(empty)"]
    top, peak = max(used), max(counts.values())
    lines = [f"{'':5}{title:<13} : count     distribution"]
    for slot in range(0, top + 1):
        count = counts.get(slot, 0)
        lines.append(f"{'':8}{slot:<10} : {count:<8} |{_stars(count, peak, 40):<40}|")
    return _capped(lines, max_lines)


def _capped(lines: list[str], max_lines: int) -> list[str]:
    if len(lines) - 1 <= max_lines:
        return lines
    return [*lines[: max_lines + 1], f"... {len(lines) - 1 - max_lines} more buckets"]
