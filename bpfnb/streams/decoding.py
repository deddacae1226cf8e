"""A stream's raw event records, and how they become a DataFrame: columns, ``time``, ``cpu``, decoders.

Two steps, so that the second can run on another machine than the first
(a cluster's engine takes the rows, the client makes the frame):

1. :meth:`EventDecoding.rows` settles, on the machine that received the
   records, what depends on that machine: the offset between its wall clock
   and the clock of the events' timestamps, and the ``decode=`` columns
   (kernel symbols, clocks). The records stay raw (:class:`Rows`).
2. :func:`rows_frame` builds the columns from any number of :class:`Rows`,
   anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import columns_of
from ..decode.decoders import Decoder, clock_offset_ns, decoded_columns, utc_times, with_decoded
from ..errors import DecodeError

__all__ = ["Batch", "EventDecoding", "Rows", "rows_frame"]


class Batch:
    """Raw records received together: decoded only on demand."""

    __slots__ = ("cpu", "received_ns", "records")

    def __init__(self, records: np.ndarray, received_ns: int, cpu: int | None) -> None:
        self.records = records
        self.received_ns = received_ns
        self.cpu = cpu


@dataclass(frozen=True)
class Rows:
    """Events taken from a buffer, records still raw, with what their machine says about them.

    ``counts``, ``received_ns`` and ``cpus`` describe the batches the records
    arrived in (one entry per batch, not per row); ``decoded`` holds the
    ``decode=`` columns, one value per row.
    """

    records: np.ndarray
    #: Rows of each batch, in order.
    counts: np.ndarray
    #: When each batch was received (ns since the epoch).
    received_ns: np.ndarray
    #: Each batch's CPU (perf buffers), or None.
    cpus: np.ndarray | None
    #: The field holding the event's kernel time, or None: the time is when its batch was received.
    time_field: str | None
    #: Wall-clock ns minus the time field's clock on the receiving machine, when the rows were taken.
    clock_offset_ns: int = 0
    decoded: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def times(self) -> np.ndarray:
        """Each row's wall-clock time, in ns since the epoch."""
        if self.time_field is not None:
            return self.records[self.time_field].astype(np.int64) + self.clock_offset_ns
        return np.repeat(self.received_ns.astype(np.int64), self.counts)

    def cpu_column(self) -> np.ndarray | None:
        return None if self.cpus is None else np.repeat(self.cpus.astype(np.uint32), self.counts)

    def shifted(self, ns: int) -> Rows:
        """These rows with their times ``ns`` later (another machine's clock)."""
        return replace(self, clock_offset_ns=self.clock_offset_ns + ns, received_ns=self.received_ns + ns)

    def without_first(self, cut: int) -> Rows:
        """These rows but the ``cut`` oldest (a copy: the memory of those cut is released)."""
        ends = np.cumsum(self.counts)
        first = int(np.searchsorted(ends, cut, side="right"))
        counts = self.counts[first:].copy()
        if len(counts):
            counts[0] = ends[first] - cut
        return replace(
            self,
            records=self.records[cut:].copy(),
            counts=counts,
            received_ns=self.received_ns[first:],
            cpus=None if self.cpus is None else self.cpus[first:],
            decoded={c: _tail(v, cut) for c, v in self.decoded.items()},
        )


def _tail(values: Any, cut: int) -> Any:
    return values.iloc[cut:] if isinstance(values, pd.Series) else values[cut:]


class EventDecoding:
    """How a stream's raw records become a DataFrame: shared by the stream and its thread."""

    def __init__(
        self,
        dtype: np.dtype,
        *,
        decode: Mapping[str, Decoder] | None,
        time_field: str | None,
        time_clock: str,
        per_cpu: bool,
    ) -> None:
        self.dtype = dtype
        self.decode = dict(decode or {})
        self.time_field = time_field
        self.time_clock = time_clock
        # Measured once (a clock it does not know is an error now, not at the first df()): every
        # frame of the stream, and of its recording, gives an event the same time.
        offset = clock_offset_ns(time_clock)
        self.clock_offset = offset if time_field is not None else 0
        self.per_cpu = per_cpu
        columns = columns_of(np.zeros(0, self.dtype))
        if time_field is not None and time_field not in columns:
            raise DecodeError(
                f"time_field={time_field!r} is not a field of the event",
                hint=f"fields are: {', '.join(columns)}",
            )

    def rows(self, batches: Sequence[Batch]) -> Rows:
        """``batches`` as one :class:`Rows`, timed and decoded by this machine."""
        parts = [b.records for b in batches]
        rows = Rows(
            _joined(parts, self.dtype),
            counts=np.array([len(part) for part in parts], dtype=np.int64),
            received_ns=np.array([b.received_ns for b in batches], dtype=np.int64),
            cpus=np.array([b.cpu for b in batches], dtype=np.uint32) if self.per_cpu else None,
            time_field=self.time_field,
            clock_offset_ns=self.clock_offset,
        )
        if self.decode:
            rows = replace(rows, decoded=decoded_columns(_columns([rows]), self.decode))
        return rows

    def frame(self, batches: Sequence[Batch]) -> pd.DataFrame:
        return rows_frame([self.rows(batches)], self.dtype)


def rows_frame(parts: Sequence[Rows], dtype: np.dtype, *, order: np.ndarray | None = None) -> pd.DataFrame:
    """One frame of the rows of ``parts``: ``time`` (``cpu`` for perf buffers), then the event's fields.

    ``dtype`` is the events' record type (the frame's columns when there are
    no rows). ``order``, a permutation of all the parts' rows, puts them in
    that order first: cheaper on the raw records than on the frame's columns.
    """
    columns = _columns(parts, dtype, order)
    decoded = {c: _picked(_joined([p.decoded[c] for p in parts]), order) for c in (parts[0].decoded if parts else {})}
    return with_decoded(pd.DataFrame(columns, copy=False), decoded)


def _columns(parts: Sequence[Rows], dtype: np.dtype | None = None, order: np.ndarray | None = None) -> dict[str, Any]:
    records = _picked(_joined([p.records for p in parts], dtype), order)
    columns: dict[str, Any] = {"time": utc_times(_picked(_joined([p.times() for p in parts], np.int64), order))}
    cpus = [p.cpu_column() for p in parts]
    if parts and cpus[0] is not None:
        columns["cpu"] = _picked(_joined(cpus), order)
    columns.update({c: v for c, v in columns_of(records).items() if c not in columns})
    return columns


def _joined(values: list[Any], dtype: Any = None) -> Any:
    """``values`` end to end; arrays keep ``dtype`` (numpy would drop a record type's padding)."""
    if len(values) == 1:
        return values[0]
    if not values:
        return np.zeros(0, dtype)
    if isinstance(values[0], np.ndarray):
        return np.concatenate(values, dtype=dtype)
    return pd.concat([pd.Series(v) for v in values], ignore_index=True)


def _picked(values: Any, order: np.ndarray | None) -> Any:
    if order is None:
        return values
    return values.iloc[order].reset_index(drop=True) if isinstance(values, pd.Series) else values[order]
