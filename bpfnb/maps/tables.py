"""Views on key/value maps: hashes, arrays, their per-CPU forms, and maps user space cannot read."""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedMapError
from ..kernel.constants import BPF_F_MMAPABLE
from .io import MapLayout
from .view import BpfMap

__all__ = ["ArrayMap", "HashMap", "PerCpuArrayMap", "PerCpuHashMap", "UnsupportedMap"]


class HashMap(BpfMap):
    """Hash and LRU hash maps (and LPM tries: prefix length and address are columns)."""


class PerCpuHashMap(HashMap):
    """Per-CPU hash and LRU per-CPU hash maps: one value per possible CPU."""

    percpu = True


class ArrayMap(BpfMap):
    """Arrays: every index exists; clearing writes zeros."""

    def _mmapable(self) -> bool:
        return self.map_type == "array" and bool(self.spec.map_flags & BPF_F_MMAPABLE)

    def __len__(self) -> int:
        return self.max_entries

    def clear(self) -> None:
        """Write zeros to every slot (array entries cannot be deleted)."""
        self._alive()
        keys = np.arange(self.max_entries, dtype=np.uint32).view(self.layout.key)
        self._io.update(keys, np.zeros(self.max_entries, self.layout.slot))


class PerCpuArrayMap(ArrayMap):
    """Per-CPU arrays."""

    percpu = True


class UnsupportedMap(BpfMap):
    """A map whose contents user space cannot list (or bpfnb does not read yet)."""

    _HINTS = {
        "perf_event_array": "it is an event buffer: read it with prog.stream({name!r})",
        "ringbuf": "it is an event buffer: read it with prog.stream({name!r})",
        "task_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "sk_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "inode_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "cgrp_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
    }

    def _layout(self) -> MapLayout:
        return MapLayout(np.dtype(f"V{max(self.spec.key_size, 1)}"), np.dtype(f"V{max(self.spec.value_size, 1)}"))

    def _refuse(self) -> UnsupportedMapError:
        hint = self._HINTS.get(self.map_type, "copy what you need into a BPF_HASH or BPF_ARRAY and read that")
        article = "an" if self.map_type[0] in "aeiou" else "a"
        return UnsupportedMapError(
            f"map {self.name!r} is {article} {self.map_type} map, which bpfnb cannot read from user space",
            hint=hint.format(name=self.name),
        )

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        raise self._refuse()

    def __len__(self) -> int:
        raise self._refuse()

    def clear(self) -> None:
        raise self._refuse()
