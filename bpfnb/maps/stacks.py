"""``BPF_STACK_TRACE`` maps: each stack id's frames, symbolized, and a folded string for flame graphs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.decoders import Decoder, apply_decoders
from ..kernel.symbols import symbolize
from .view import BpfMap

__all__ = ["StackTraceMap", "stack_frames"]


class StackTraceMap(BpfMap):
    """``BPF_STACK_TRACE``: stack id -> instruction pointers, innermost first."""

    def df(self, *, decode: Mapping[str, Decoder] | None = None, pid: int | None = None) -> pd.DataFrame:
        """Stacks as rows: ``stack_id``, ``depth``, ``frames`` (innermost first), ``folded``.

        Parameters
        ----------
        pid
            The process whose user-space addresses these are (needed to name
            them; the process must still run). Kernel addresses are named
            from ``/proc/kallsyms`` either way.
        decode
            Column decoders, as for other maps.

        ``folded`` joins the frames outermost first with ``;``, the input
        format of flame graph tools.
        """
        frame = self._stacks(*self.records(), pid=pid)
        return apply_decoders(frame, decode) if decode else frame

    def _head(self) -> pd.DataFrame:
        return self._stacks(*self.records(limit=10), pid=None)

    def _stacks(self, keys: np.ndarray, values: np.ndarray, *, pid: int | None) -> pd.DataFrame:
        ips = values[values.dtype.names[0]] if values.dtype.names else values
        frames = stack_frames(np.asarray(ips, dtype=np.uint64).reshape(len(keys), self.spec.value_size // 8), pid=pid)
        return pd.DataFrame(
            {
                "stack_id": np.asarray(keys).astype(np.int64),
                "depth": np.array([len(f) for f in frames], dtype=np.int64),
                "frames": pd.Series(frames, dtype=object),
                "folded": [";".join(reversed(f)) for f in frames],
            }
        )

    def frames(self, stack_id: int, *, pid: int | None = None) -> list[str]:
        """One stack's symbolized frames, innermost first."""
        return stack_frames(np.asarray(self[stack_id], dtype=np.uint64).reshape(1, -1), pid=pid)[0]

    def __getitem__(self, key: Any) -> Any:
        """The stack's instruction pointers (zero after the outermost frame)."""
        value = super().__getitem__(key)
        return next(iter(value.values())) if isinstance(value, dict) else value


def stack_frames(ips: np.ndarray, *, pid: int | None = None) -> list[list[str]]:
    """Symbolize rows of instruction pointers (zero-terminated) into lists of names."""
    if not len(ips):
        return []
    zero = ips == 0
    depth = np.where(zero.any(axis=1), zero.argmax(axis=1), ips.shape[1])
    names = symbolize(ips[np.arange(ips.shape[1]) < depth[:, None]], pid=pid)
    return [list(chunk) for chunk in np.split(names, np.cumsum(depth)[:-1])]
