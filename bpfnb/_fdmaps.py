"""Views on maps that are not plain key/value tables.

- stack traces: each stack id's frames, symbolized, and a folded string;
- queues and stacks (FIFO/LIFO maps, no keys): the kernel only lets user
  space peek at the head or pop, so a full view pops everything and pushes it
  back (see :class:`QueueMap` for what that means while a program runs);
- program arrays: the kernel reports the id of the program in each slot;
- cgroup arrays: the kernel does not report the slots' cgroups to user space,
  so the view shows the paths set through it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._decode import Decoder, apply_decoders, to_frame
from ._libbpf import map_elem, prog_name_by_id
from ._maps import ArrayMap, BpfMap, HashMap
from ._symbols import symbolize

__all__ = ["CgroupArrayMap", "ProgArrayMap", "QueueMap", "StackTraceMap"]

#: Push onto a full queue/stack by dropping its oldest value.
_BPF_EXIST = 2


class StackTraceMap(HashMap):
    """``BPF_STACK_TRACE``: stack id -> instruction pointers, innermost first."""

    def df(self, *, pid: int | None = None, decode: Mapping[str, Decoder] | None = None, **_: Any) -> pd.DataFrame:
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
            map_elem("update_elem", self.spec.fd, None, values.ctypes.data + i * values.itemsize, _BPF_EXIST)

    def df(self, *, consume: bool = False, decode: Mapping[str, Decoder] | None = None, **_: Any) -> pd.DataFrame:
        """The values from head to tail; ``consume=True`` removes them."""
        values = self._pop_all() if consume else self.records()[1]
        return to_frame({"value": values}, decode=decode)

    def peek(self) -> Any:
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


class ProgArrayMap(ArrayMap):
    """``BPF_PROG_ARRAY``: slot -> program (for tail calls); empty slots are left out."""

    def _slots(self) -> tuple[np.ndarray, np.ndarray]:
        keys, ids = self._io.read_indices(np.arange(self.max_entries, dtype=np.uint32))
        return keys.view(np.uint32) if keys.dtype != np.uint32 else keys, ids.view(np.uint32).reshape(-1)

    def df(self, **_: Any) -> pd.DataFrame:
        """Columns ``key`` (slot), ``prog_id`` and ``program`` (the kernel's name for it)."""
        keys, ids = self._slots()
        return pd.DataFrame({"key": keys, "prog_id": ids, "program": [prog_name_by_id(int(i)) for i in ids]})

    def _head(self) -> pd.DataFrame:
        return self.df().head(10)

    def __len__(self) -> int:
        return len(self._slots()[0])

    def __iter__(self) -> Any:
        return iter(self._slots()[0].tolist())

    def clear(self) -> None:
        """Empty every slot."""
        self._io.delete(np.arange(self.max_entries, dtype=np.uint32))


class CgroupArrayMap(ArrayMap):
    """``BPF_CGROUP_ARRAY``: slot -> cgroup, for ``current_task_under_cgroup``.

    The kernel does not tell user space which cgroup a slot holds, so this
    view shows the slots set with :meth:`set` in this session.
    """

    def __init__(self, program: Any, spec: Any) -> None:
        super().__init__(program, spec)
        self._paths: dict[int, str] = {}

    def set(self, index: int, path: str) -> None:
        """Put the cgroup at ``path`` (a cgroup v2 directory) in slot ``index``."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            key, value = np.array([index], np.uint32), np.array([fd], np.uint32)
            map_elem("update_elem", self.spec.fd, key.ctypes.data, value.ctypes.data, 0)
        finally:
            os.close(fd)
        self._paths[index] = path

    def df(self, **_: Any) -> pd.DataFrame:
        """Columns ``key`` (slot) and ``path``, for slots set through this view."""
        items = sorted(self._paths.items())
        return pd.DataFrame({"key": [k for k, _ in items], "path": [p for _, p in items]})

    def _head(self) -> pd.DataFrame:
        return self.df().head(10)

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Any:
        return iter(sorted(self._paths))

    def __getitem__(self, key: Any) -> Any:
        return self._paths[key]

    def clear(self) -> None:
        """Empty every slot."""
        self._io.delete(np.arange(self.max_entries, dtype=np.uint32))
        self._paths.clear()
