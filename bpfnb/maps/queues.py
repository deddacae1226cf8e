"""Queues and stacks (FIFO/LIFO maps without keys), read without ever blocking.

The kernel only lets user space peek at the head or pop it, so a full view
pops everything and pushes it back (see :class:`QueueMap` for what that means
while a program runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import to_frame
from ..decode.decoders import Decoder
from ..kernel.constants import BPF_EXIST
from ..kernel.libbpf import map_elem
from .view import BpfMap

__all__ = ["QueueMap"]


class QueueMap(BpfMap):
    """``BPF_QUEUE`` / ``BPF_STACK``: values without keys, in FIFO or LIFO order.

    The kernel lets user space only peek at the head or pop it. ``df()`` and
    ``len()`` therefore pop every value and push them back in the same order;
    a program pushing or popping at the same moment can see a shorter map or
    interleave its values, and if it fills the map meanwhile the push-back
    overwrites the oldest values (``BPF_EXIST``) rather than fail.
    ``df(consume=True)`` pops for good. The notebook display only peeks.
    """

    countable_in_displays = False

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        values = self._pop_all()
        self._push(values if self.map_type == "queue" else values[::-1])
        shown = values[:limit]
        return np.empty(len(shown), self.layout.key), shown

    def _title(self) -> str:
        return f"map {self.name}: {self.map_type} of {self.value_type}, at most {self.max_entries} values"

    def _head(self) -> pd.DataFrame:
        # A display must not pop and push a live queue: show only its head.
        head = self.peek()
        return pd.DataFrame({"head": [] if head is None else [head]})

    def _pop_all(self) -> np.ndarray:
        held = []
        while True:
            value = np.empty(1, self.layout.value)
            if not map_elem("lookup_and_delete_elem", self.spec.fd, None, value.ctypes.data):
                break
            held.append(value)
        return np.concatenate(held) if held else np.empty(0, self.layout.value)

    def _push(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values)
        for i in range(len(values)):
            map_elem("update_elem", self.spec.fd, None, values.ctypes.data + i * values.itemsize, BPF_EXIST)

    def df(self, *, decode: Mapping[str, Decoder] | None = None, consume: bool = False) -> pd.DataFrame:
        """The values from head to tail; ``consume=True`` removes them."""
        values = self._pop_all() if consume else self.records()[1]
        return to_frame({"value": values}, decode=decode)

    def peek(self) -> object:
        """The head value without removing it, or None when empty."""
        value = np.empty(1, self.layout.value)
        if not map_elem("lookup_elem", self.spec.fd, None, value.ctypes.data):
            return None
        return value.tolist()[0]

    def __len__(self) -> int:
        return len(self.records()[1])

    def __iter__(self) -> Any:
        return iter(self.records()[1].tolist())

    def __getitem__(self, key: Any) -> Any:
        raise KeyError(f"{self.map_type} maps have no keys; use .df() or .peek()")

    def clear(self) -> None:
        """Pop every value."""
        self._pop_all()
