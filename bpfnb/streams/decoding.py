"""A stream's raw event records, and how they become a DataFrame: columns, ``time``, ``cpu``, decoders."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import to_frame
from ..decode.decoders import Decoder, apply_decoders, boot_to_wall, utc_times
from ..decode.dtypes import dtype_of
from ..errors import DecodeError

__all__ = ["Batch", "EventDecoding"]


class Batch:
    """Raw records received together: decoded only on demand."""

    __slots__ = ("cpu", "received_ns", "records")

    def __init__(self, records: np.ndarray, received_ns: int, cpu: int | None) -> None:
        self.records = records
        self.received_ns = received_ns
        self.cpu = cpu


class EventDecoding:
    """How raw records become a DataFrame: shared by the stream and its thread."""

    def __init__(
        self,
        ctype: type,
        *,
        decode: Mapping[str, Decoder] | None,
        time_field: str | None,
        time_clock: str,
        per_cpu: bool,
    ) -> None:
        self.ctype = ctype
        self.dtype = dtype_of(ctype)
        self.decode = dict(decode or {})
        self.time_field = time_field
        self.time_clock = time_clock
        self.per_cpu = per_cpu
        columns = to_frame({"value": np.zeros(0, self.dtype)}).columns
        if time_field is not None and time_field not in columns:
            raise DecodeError(
                f"time_field={time_field!r} is not a field of the event",
                hint=f"fields are: {', '.join(columns)}",
            )

    def frame(self, batches: list[Batch]) -> pd.DataFrame:
        parts = [b.records for b in batches]
        if len(parts) == 1:
            records = parts[0]
        else:
            records = np.concatenate(parts) if parts else np.zeros(0, self.dtype)
        frame = to_frame({"value": records})
        counts = [len(part) for part in parts]
        if self.time_field is not None:
            times = boot_to_wall(frame[self.time_field].to_numpy(), clock=self.time_clock)
        else:
            times = utc_times(np.repeat(np.array([b.received_ns for b in batches], dtype=np.int64), counts))
        columns: dict[str, Any] = {"time": times}
        if self.per_cpu:
            columns["cpu"] = np.repeat(np.array([b.cpu for b in batches], dtype=np.uint32), counts)
        columns.update({c: frame[c] for c in frame.columns if c not in columns})
        frame = pd.DataFrame(columns, copy=False)
        if self.decode:
            frame = apply_decoders(frame, self.decode)
        return frame
