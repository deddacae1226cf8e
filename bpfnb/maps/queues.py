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
from ..engines.interrupts import deferred_interrupts
from ..errors import Interrupted
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

    A read pops at most ``max_entries`` values, so it ends even while a
    program pushes as fast as it is popped; ``df().attrs["more_waiting"]``
    says whether values were still waiting then.
    """

    countable_in_displays = False

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        values, _more = self._take(consume=False)
        shown = values[:limit]
        return np.empty(len(shown), self.layout.key), shown

    def _title(self) -> str:
        return f"map {self.name}: {self.map_type} of {self.value_type}, at most {self.max_entries} values"

    def _head(self) -> pd.DataFrame:
        # A display must not pop and push a live queue: show only its head.
        head = self.peek()
        return pd.DataFrame({"head": [] if head is None else [head]})

    def _take(self, *, consume: bool) -> tuple[np.ndarray, bool]:
        """Every value (put back in order unless ``consume``), and whether more were waiting.

        Ctrl-C waits until the popped values are back: an interrupted read must not lose them.
        """
        with deferred_interrupts() as interrupted:
            values, more = self._pop_all()
            if not consume:
                self._push(values if self.map_type == "queue" else values[::-1])
        if interrupted:
            raise Interrupted(f"reading {self.map_type} {self.name!r} (every value is back in it)")
        return values, more

    def _pop_all(self) -> tuple[np.ndarray, bool]:
        """Every value, popped (at most ``max_entries`` of them); and whether more were waiting."""
        self._alive()
        values = np.empty(self.max_entries, self.layout.value)
        popped = 0
        while popped < self.max_entries:
            if not map_elem("lookup_and_delete_elem", self.spec.fd, None, values.ctypes.data + popped * values.itemsize):
                return values[:popped], False
            popped += 1
        return values, self.peek() is not None

    def _push(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values)
        for i in range(len(values)):
            map_elem("update_elem", self.spec.fd, None, values.ctypes.data + i * values.itemsize, BPF_EXIST)

    def df(self, *, decode: Mapping[str, Decoder] | None = None, consume: bool = False) -> pd.DataFrame:
        """The values from head to tail; ``consume=True`` removes them."""
        values, more = self._take(consume=consume)
        frame = to_frame({"value": values}, decode=decode)
        frame.attrs["more_waiting"] = more
        return frame

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
