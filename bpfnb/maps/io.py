"""Whole-map reads and writes between the kernel and numpy arrays.

The fast path asks the kernel for many elements per syscall
(``BPF_MAP_LOOKUP_BATCH`` and friends) straight into preallocated numpy
buffers: no Python object per entry. Kernels before 5.6, and map types without
batch operations (stack traces, LPM tries on older kernels, fd arrays), answer
EINVAL/ENOTSUPP; then the same arrays are filled by a walk with
``get_next_key`` + ``lookup``, one pair of syscalls per entry (slower, same
result). Reaching the end of a map is ENOENT, which is not an error.

Per-CPU maps hold, for each key, one value per *possible* CPU, each rounded
up to 8 bytes; :class:`MapLayout` describes that buffer.
"""

from __future__ import annotations

import errno
import mmap
from dataclasses import dataclass, field

import numpy as np

from ..kernel import libbpf as _libbpf
from ..kernel.libbpf import map_batch, map_elem

__all__ = ["MapIO", "MapLayout", "padded_dtype"]

#: Elements asked for per batch call when the map's size is unknown or huge.
CHUNK = 1 << 16
#: Read the whole map in one call when its buffers stay under this many bytes.
ONE_SHOT_BYTES = 256 << 20


def padded_dtype(dtype: np.dtype, itemsize: int) -> np.dtype:
    """``dtype`` wrapped in a record of ``itemsize`` bytes, its value under field ``v``."""
    return np.dtype({"names": ["v"], "formats": [dtype], "offsets": [0], "itemsize": itemsize})


@dataclass(frozen=True)
class MapLayout:
    """Key and value records of one map, and the per-CPU shape of its values."""

    key: np.dtype
    value: np.dtype
    cpus: int = 0  # 0: not a per-CPU map

    @property
    def slot(self) -> np.dtype:
        """One value slot in a lookup buffer: the value, or ``cpus`` padded copies of it."""
        if not self.cpus:
            return self.value
        stride = -(-self.value.itemsize // 8) * 8
        return np.dtype([("v", padded_dtype(self.value, stride), (self.cpus,))])

    def values(self, slots: np.ndarray) -> np.ndarray:
        """Values out of slots: shape (n,) or, per CPU, (n, cpus)."""
        return slots["v"]["v"] if self.cpus else slots


@dataclass
class MapIO:
    """Bulk operations on one map fd, with a fallback when the kernel lacks batches.

    ``mmapable`` marks an array created with ``BPF_F_MMAPABLE``: its values are
    read straight from a shared mapping, with no syscall per element.
    """

    fd: int
    layout: MapLayout
    max_entries: int
    batch: bool = True  # cleared at the first EINVAL/ENOTSUPP
    mmapable: bool = False
    last_path: str = field(default="batch", init=False)

    # -- reading ---------------------------------------------------------------

    def read(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every (key, value slot) of the map, or the first ``limit``, as two arrays."""
        limit = self.max_entries if limit is None else min(limit, self.max_entries)
        if self.mmapable:
            self.last_path = "mmap"
            return self._read_mmap(limit)
        if self.batch:
            try:
                keys, slots, held = self._scan(limit=limit, keep=True)
                self.last_path = "batch"
                return keys[:held], slots[:held]
            except OSError as exc:
                if exc.errno not in _libbpf.BATCH_UNSUPPORTED:
                    raise
                self.batch = False
        self.last_path = "walk"
        return self._read_walk(limit)

    def _scan(self, *, limit: int, keep: bool) -> tuple[np.ndarray, np.ndarray, int]:
        """Batch lookups from the start of the map until its end or ``limit`` entries.

        ``keep`` stores every entry (buffers grow as needed); otherwise one
        chunk-sized buffer is reused and only the count is kept.
        """
        entry = self.layout.key.itemsize + self.layout.slot.itemsize
        size = limit if keep and limit * entry <= ONE_SHOT_BYTES else min(limit, CHUNK)
        keys, slots = np.empty(max(size, 1), self.layout.key), np.empty(max(size, 1), self.layout.slot)
        token = np.zeros(2, np.uint64)  # in/out batch token: the kernel's position in the map
        total, first = 0, True
        while total < limit:
            at = total if keep else 0
            if at == len(keys):
                keys, slots = np.resize(keys, 2 * at), np.resize(slots, 2 * at)
            try:
                got, end = map_batch(
                    "lookup",
                    self.fd,
                    None if first else token.ctypes.data,
                    token.ctypes.data,
                    keys.ctypes.data + at * keys.itemsize,
                    slots.ctypes.data + at * slots.itemsize,
                    count=min(len(keys) - at, limit - total),
                )
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                # One hash bucket holds more entries than the room left: make room.
                keys, slots = np.resize(keys, 2 * len(keys)), np.resize(slots, 2 * len(slots))
                limit = max(limit, len(keys))
                continue
            total += got
            first = False
            if end:
                break
        return keys, slots, total

    def _read_mmap(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        stride = -(-self.layout.value.itemsize // 8) * 8
        length = -(-stride * self.max_entries // mmap.PAGESIZE) * mmap.PAGESIZE
        with mmap.mmap(self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ) as shared:
            view = np.frombuffer(shared, padded_dtype(self.layout.value, stride), count=self.max_entries)
            values = view["v"][:limit].copy()
            del view  # the mapping cannot close while numpy still points into it
        keys = np.arange(limit, dtype=np.uint32).view(self.layout.key)
        return keys, values

    def _read_walk(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        layout = self.layout
        keys = np.empty(max(min(limit, CHUNK), 1), layout.key)
        slots = np.empty(len(keys), layout.slot)
        cursor = np.empty(1, layout.key)  # a key whose entry vanished before its lookup
        key_size, slot_size = keys.itemsize, slots.itemsize
        held, previous = 0, None  # previous: the address of the key to continue after
        while held < limit:
            if held == len(keys):
                kept = previous != cursor.ctypes.data
                keys, slots = np.resize(keys, 2 * held), np.resize(slots, 2 * held)
                if kept:
                    previous = keys.ctypes.data + (held - 1) * key_size
            key_at = keys.ctypes.data + held * key_size
            if not map_elem("get_next_key", self.fd, previous, key_at):
                break
            if map_elem("lookup_elem", self.fd, key_at, slots.ctypes.data + held * slot_size):
                held, previous = held + 1, key_at
            else:
                cursor[0] = keys[held]
                previous = cursor.ctypes.data
        return keys[:held], slots[:held]

    def read_keys(self, *, limit: int | None = None) -> np.ndarray:
        """Every key of the map, or the first ``limit``, without their values (maps that do not show values)."""
        limit = self.max_entries if limit is None else min(limit, self.max_entries)
        keys = np.empty(max(limit, 1), self.layout.key)
        held, previous = 0, None
        while held < limit:
            key_at = keys.ctypes.data + held * keys.itemsize
            if not map_elem("get_next_key", self.fd, previous, key_at):
                break
            held, previous = held + 1, key_at
        return keys[:held]

    def read_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values at the given keys, skipping absent ones (fd arrays: ENOENT per empty slot)."""
        keys = np.ascontiguousarray(indices, dtype=self.layout.key)
        slots = np.empty(len(keys), self.layout.slot)
        present = np.zeros(len(keys), bool)
        for i in range(len(keys)):
            present[i] = map_elem(
                "lookup_elem", self.fd, keys.ctypes.data + i * keys.itemsize, slots.ctypes.data + i * slots.itemsize
            )
        return keys[present], slots[present]

    def count(self) -> int:
        """How many entries the map holds, read in bounded chunks (no Python per entry)."""
        if self.batch:
            try:
                return self._scan(limit=self.max_entries, keep=False)[2]
            except OSError as exc:
                if exc.errno not in _libbpf.BATCH_UNSUPPORTED:
                    raise
                self.batch = False
        return len(self._read_walk(self.max_entries)[0])

    # -- writing ---------------------------------------------------------------

    def update(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Write many entries (``BPF_ANY``), by batch where the kernel can."""
        keys = np.ascontiguousarray(keys, dtype=self.layout.key)
        slots = np.ascontiguousarray(slots, dtype=self.layout.slot)
        if self.batch and len(keys):
            try:
                done = 0
                while done < len(keys):
                    got, _ = map_batch(
                        "update",
                        self.fd,
                        keys.ctypes.data + done * keys.itemsize,
                        slots.ctypes.data + done * slots.itemsize,
                        count=len(keys) - done,
                    )
                    done += got
                return
            except OSError as exc:
                if exc.errno not in _libbpf.BATCH_UNSUPPORTED:
                    raise
                self.batch = False
        for i in range(len(keys)):
            map_elem(
                "update_elem",
                self.fd,
                keys.ctypes.data + i * keys.itemsize,
                slots.ctypes.data + i * slots.itemsize,
                0,
            )

    def delete(self, keys: np.ndarray) -> int:
        """Delete the given keys; returns how many were deleted (absent ones are skipped)."""
        keys = np.ascontiguousarray(keys, dtype=self.layout.key)
        if self.batch and len(keys):
            try:
                done = deleted = 0
                while done < len(keys):
                    at = keys.ctypes.data + done * keys.itemsize
                    got, end = map_batch("delete", self.fd, at, count=len(keys) - done)
                    # ENOENT stops the batch at a key that vanished meanwhile: skip it.
                    done, deleted = done + got + end, deleted + got
                return deleted
            except OSError as exc:
                if exc.errno not in _libbpf.BATCH_UNSUPPORTED:
                    raise
                self.batch = False
        deleted = 0
        for i in range(len(keys)):
            deleted += map_elem("delete_elem", self.fd, keys.ctypes.data + i * keys.itemsize)
        return deleted
