"""Arrays of kernel objects: program arrays (tail calls) and cgroup arrays.

The kernel reports the id of the program in each slot of a program array; it
does not report the cgroups of a cgroup array, so that view shows the paths
set through it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.decoders import Decoder, apply_decoders
from ..engines.base import MapSpec, Owner
from ..kernel.libbpf import map_elem, prog_name_by_id
from .view import PREVIEW_ROWS, BpfMap

__all__ = ["CgroupArrayMap", "ProgArrayMap"]


class _KernelObjectArray(BpfMap):
    """An array whose slots hold kernel objects: user space sets and empties slots, and may not read them."""

    def df(self, *, decode: Mapping[str, Decoder] | None = None) -> pd.DataFrame:
        frame = self._rows()
        return apply_decoders(frame, decode) if decode else frame

    def _rows(self) -> pd.DataFrame:
        raise NotImplementedError

    def _head(self) -> pd.DataFrame:
        return self.df().head(PREVIEW_ROWS)

    def clear(self) -> None:
        """Empty every slot."""
        self._io.delete(np.arange(self.max_entries, dtype=np.uint32))


class ProgArrayMap(_KernelObjectArray):
    """``BPF_PROG_ARRAY``: slot -> program (for tail calls); empty slots are left out.

    ``df()`` has columns ``key`` (slot), ``prog_id`` and ``program`` (the
    kernel's name for it).
    """

    def _slots(self) -> tuple[np.ndarray, np.ndarray]:
        keys, ids = self._io.read_indices(np.arange(self.max_entries, dtype=np.uint32))
        return keys.view(np.uint32) if keys.dtype != np.uint32 else keys, ids.view(np.uint32).reshape(-1)

    def _rows(self) -> pd.DataFrame:
        keys, ids = self._slots()
        return pd.DataFrame({"key": keys, "prog_id": ids, "program": [prog_name_by_id(int(i)) for i in ids]})

    def __len__(self) -> int:
        return len(self._slots()[0])

    def __iter__(self) -> Iterator[Any]:
        return iter(self._slots()[0].tolist())


class CgroupArrayMap(_KernelObjectArray):
    """``BPF_CGROUP_ARRAY``: slot -> cgroup, for ``current_task_under_cgroup``.

    The kernel does not tell user space which cgroup a slot holds, so this
    view shows the slots set with :meth:`set` in this session: ``df()`` has
    columns ``key`` (slot) and ``path``.
    """

    def __init__(self, program: Owner, spec: MapSpec) -> None:
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

    def _rows(self) -> pd.DataFrame:
        items = sorted(self._paths.items())
        return pd.DataFrame({"key": [k for k, _ in items], "path": [p for _, p in items]})

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[Any]:
        return iter(sorted(self._paths))

    def __getitem__(self, key: Any) -> Any:
        return self._paths[key]

    def clear(self) -> None:
        """Empty every slot."""
        super().clear()
        self._paths.clear()
