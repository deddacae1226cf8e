"""Views on local storage: values the kernel keeps on tasks, cgroups and sockets.

A storage map has no keys to list: its values hang off kernel objects, and
user space reads one through an fd on its object. ``.df()`` therefore visits
every object of the map's kind this process can reach (every thread, every
cgroup, every socket of every process: see :mod:`bpfnb.kernel.handles`) and
keeps those that have a value, one row each, named by the object's id (the
thread id, the cgroup id, the socket cookie) and described by columns
(process name, cgroup path, socket addresses). ``prog["m"][obj]`` reads one
object's value: a pid, a cgroup path, a socket or its fd.

Inode storage stays unreadable: no fd reaches every inode, so its view says
how to get the values out instead.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import to_frame
from ..decode.decoders import Decoder
from ..errors import ArgumentError, Interrupted
from ..kernel.cgroups import open_cgroup, resolve_cgroup
from ..kernel.handles import PIDFD_THREAD, Handle, cgroup_handles, socket_handles, task_handles
from ..kernel.libbpf import map_elem
from .view import PREVIEW_ROWS, BpfMap

__all__ = ["CgroupStorageMap", "LocalStorageMap", "SocketStorageMap", "TaskStorageMap"]


class LocalStorageMap(BpfMap):
    """Local storage: one value per kernel object, read through an fd on each object."""

    #: The column naming each object (the index of the map as a Mapping).
    id_column = "id"
    #: What ``prog["m"][obj]`` takes, for messages.
    object_kind = "object"
    # Reading visits every object of the kind: a display counts nothing.
    countable_in_displays = False

    def _handles(self) -> contextlib.AbstractContextManager[Iterator[Handle]]:
        raise NotImplementedError

    def _title(self) -> str:
        return f"map {self.name}: {self.map_type}, a {self.value_type} per {self.object_kind.split(' (')[0]}"

    def _open(self, obj: Any) -> int:
        """An fd on the object ``obj`` names, for one lookup."""
        raise NotImplementedError

    def _visit(self, limit: int | None = None) -> tuple[list[Handle], np.ndarray]:
        """The objects that have a value, with their values, in one pass over every object."""
        self._alive()
        found: list[Handle] = []
        slot = np.empty(1, self.layout.slot)
        values: list[np.ndarray] = []
        try:
            with self._handles() as handles:
                for handle in handles:
                    key = np.array([handle.fd], np.int32)
                    if map_elem("lookup_elem", self.spec.fd, key.ctypes.data, slot.ctypes.data):
                        found.append(Handle(handle.id, -1, handle.columns))
                        values.append(slot.copy())
                        if limit is not None and len(found) >= limit:
                            break
        except KeyboardInterrupt:
            raise Interrupted(f"reading map {self.name!r}") from None
        slots = np.concatenate(values) if values else np.empty(0, self.layout.slot)
        return found, self.layout.values(slots)

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Object ids (uint64) and their values."""
        found, values = self._visit(limit)
        return np.array([h.id for h in found], np.uint64), values

    def df(self, *, decode: Mapping[str, Decoder] | None = None) -> pd.DataFrame:
        """One row per object that has a value: its id, what it is, then the value's columns."""
        return self._table(*self._visit(), decode=decode)

    def _table(self, found: list[Handle], values: np.ndarray, *, decode: Mapping[str, Decoder] | None) -> pd.DataFrame:
        described = pd.DataFrame([{self.id_column: h.id, **h.columns} for h in found])
        if described.empty:
            described = pd.DataFrame({self.id_column: np.empty(0, np.uint64)})
        value_frame = self._named_enums(to_frame({"value": values}, decode=decode), decode)
        return pd.concat([described, value_frame.reset_index(drop=True)], axis=1)

    def _head(self) -> pd.DataFrame:
        return self._table(*self._visit(PREVIEW_ROWS), decode=None)

    def __len__(self) -> int:
        return len(self._visit()[0])

    def __getitem__(self, obj: Any) -> Any:
        self._alive()
        fd = self._open(obj)
        try:
            return super().__getitem__(fd)
        except KeyError:
            raise KeyError(obj) from None
        finally:
            os.close(fd)

    def __delitem__(self, obj: Any) -> None:
        """Remove the value ``obj`` holds."""
        self._alive()
        fd = self._open(obj)
        try:
            key = np.array([fd], np.int32)
            if not map_elem("delete_elem", self.spec.fd, key.ctypes.data):
                raise KeyError(obj)
        finally:
            os.close(fd)

    def clear(self) -> None:
        """Remove every value this process can reach."""
        self._alive()
        with self._handles() as handles:
            for handle in handles:
                key = np.array([handle.fd], np.int32)
                map_elem("delete_elem", self.spec.fd, key.ctypes.data)

    def _not_an_object(self, obj: Any) -> ArgumentError:
        return ArgumentError(f"map {self.name!r} holds values per {self.object_kind}; {obj!r} is not one")


class TaskStorageMap(LocalStorageMap):
    """``task_storage``: one value per thread. ``df()`` columns: tid, pid, comm, then the value.

    ``prog["m"][pid]`` reads the value of the thread ``pid`` (a process's main thread by its pid).
    """

    id_column = "tid"
    object_kind = "thread (give its pid or tid)"

    def _handles(self) -> contextlib.AbstractContextManager[Iterator[Handle]]:
        return task_handles()

    def _open(self, obj: Any) -> int:
        if not isinstance(obj, int) or isinstance(obj, bool):
            raise self._not_an_object(obj)
        for flags in (0, PIDFD_THREAD):  # a process's main thread, else any thread
            with contextlib.suppress(OSError):
                return os.pidfd_open(obj, flags)
        raise KeyError(obj)


class CgroupStorageMap(LocalStorageMap):
    """``cgrp_storage``: one value per cgroup. ``df()`` columns: cgroup_id, cgroup (its path), then the value.

    ``prog["m"]["/my-group"]`` reads a cgroup's value by its path.
    """

    id_column = "cgroup_id"
    object_kind = "cgroup (give its path)"

    def _handles(self) -> contextlib.AbstractContextManager[Iterator[Handle]]:
        return cgroup_handles()

    def _open(self, obj: Any) -> int:
        if not isinstance(obj, (str, os.PathLike)):
            raise self._not_an_object(obj)
        return open_cgroup(resolve_cgroup(os.fspath(obj)))


class SocketStorageMap(LocalStorageMap):
    """``sk_storage``: one value per socket. ``df()`` columns: cookie, pid, comm, fd, family, type,
    local, remote, then the value; ``df(pids=[...])`` visits only those processes' sockets.

    ``prog["m"][sock]`` reads the value of a socket object (or an fd of this process).
    """

    id_column = "cookie"
    object_kind = "socket (give a socket or its fd)"
    _pids: list[int] | None = None

    def _handles(self) -> contextlib.AbstractContextManager[Iterator[Handle]]:
        return socket_handles(self._pids)

    def df(self, *, decode: Mapping[str, Decoder] | None = None, pids: list[int] | None = None) -> pd.DataFrame:
        self._pids = pids
        try:
            return super().df(decode=decode)
        finally:
            self._pids = None

    def _open(self, obj: Any) -> int:
        if isinstance(obj, socket.socket):
            return os.dup(obj.fileno())
        if isinstance(obj, int) and not isinstance(obj, bool):
            try:
                return os.dup(obj)
            except OSError:
                raise KeyError(obj) from None
        raise self._not_an_object(obj)
