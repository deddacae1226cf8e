"""Views on sockmaps and sockhashes: which socket sits at each key.

User space puts a socket in with its fd (:meth:`SockMap.set`) and reads back
the socket's cookie, the kernel's id for it (what ``bpf_get_socket_cookie``
returns), where the map's values are 8 bytes. BCC's ``BPF_SOCKMAP`` and
``BPF_SOCKHASH`` make 4-byte values, which the kernel refuses to read back:
such a sockhash shows its keys only, such a sockmap nothing. Cookies are matched to the sockets of running processes to
say whose socket each is.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import to_frame
from ..decode.decoders import Decoder
from ..errors import ArgumentError, UnsupportedMapError
from ..kernel.handles import socket_handles
from ..kernel.libbpf import empty_map, map_elem
from .view import PREVIEW_ROWS, BpfMap

__all__ = ["SockMap"]

_COOKIE_SIZE = 8


class SockMap(BpfMap):
    """``sockmap`` and ``sockhash``: key -> socket. ``df()`` columns: the key's, ``cookie``, and
    ``pid``, ``comm``, ``fd``, ``family``, ``type``, ``local``, ``remote`` of the socket when a
    process holds it (``describe=False`` skips that look-up).
    """

    @property
    def has_cookies(self) -> bool:
        """Whether the kernel reports the cookie of each socket (maps with 8-byte values)."""
        return self.spec.value_size == _COOKIE_SIZE

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Keys and cookies (cookies are 0 where the map cannot report them)."""
        self._alive()
        if self.has_cookies:
            keys, slots = self._io.read(limit=limit)
            return keys, slots.view(np.uint64).reshape(-1)
        if self.map_type == "sockmap":
            # A sockmap lists every index as a key, and without cookies nothing tells a full slot from an empty one.
            raise UnsupportedMapError(
                f"map {self.name!r} is a sockmap with {self.spec.value_size}-byte values: the kernel tells user "
                "space neither which slots hold a socket nor which socket",
                hint='declare 8-byte values to see them: BPF_TABLE("sockmap", u32, u64, name, N) in BCC, '
                "__type(value, __u64) in libbpf",
            )
        keys = self._io.read_keys(limit=limit)
        return keys, np.zeros(len(keys), np.uint64)

    def df(self, *, decode: Mapping[str, Decoder] | None = None, describe: bool = True) -> pd.DataFrame:
        keys, cookies = self.records()
        return self._table(keys, cookies, decode=decode, describe=describe)

    def _table(
        self, keys: np.ndarray, cookies: np.ndarray, *, decode: Mapping[str, Decoder] | None, describe: bool
    ) -> pd.DataFrame:
        frame = to_frame({"key": keys}, decode=decode)
        if not self.has_cookies:
            frame.attrs["note"] = "the kernel reads back cookies only from maps with 8-byte values"
            return frame
        frame["cookie"] = cookies
        if describe and len(frame):
            with socket_handles() as handles:
                known = {h.id: h.columns for h in handles if h.id in set(cookies.tolist())}
            owners = pd.DataFrame([known.get(int(c), {}) for c in cookies], index=frame.index)
            frame = pd.concat([frame, owners], axis=1)
        return frame

    def _head(self) -> pd.DataFrame:
        keys, cookies = self.records(limit=PREVIEW_ROWS)
        return self._table(keys, cookies, decode=None, describe=True)

    def __getitem__(self, key: Any) -> Any:
        """The cookie of the socket at ``key``."""
        if not self.has_cookies:
            raise ArgumentError(
                f"map {self.name!r} has {self.spec.value_size}-byte values: the kernel reads back socket cookies "
                "only from sockmaps with 8-byte values",
                hint="declare the value as __u64 (libbpf) to read cookies back; its keys are listed either way",
            )
        return super().__getitem__(key)

    def __len__(self) -> int:
        return len(self.records()[0])

    def set(self, key: Any, sock: socket.socket | int) -> None:
        """Put ``sock`` (a socket, or an fd of this process) at ``key``; TCP sockets must be connected or listening."""
        self._alive()
        fd = sock.fileno() if isinstance(sock, socket.socket) else sock
        if not isinstance(fd, int) or isinstance(fd, bool):
            raise ArgumentError(f"map {self.name!r} holds sockets; {sock!r} is not one")
        packed = self._pack(key)
        value = np.array([fd], np.uint64 if self.has_cookies else np.uint32)
        try:
            map_elem("update_elem", self.spec.fd, packed.ctypes.data, value.ctypes.data, 0)
        except OSError as exc:
            raise ArgumentError(
                f"the kernel would not put that socket in map {self.name!r}: {os.strerror(exc.errno or 0)}",
                hint="sockmaps take TCP sockets that are connected or listening, and UDP or unix sockets",
            ) from None

    def __delitem__(self, key: Any) -> None:
        self._alive()
        if not map_elem("delete_elem", self.spec.fd, self._pack(key).ctypes.data):
            raise KeyError(key)

    def clear(self) -> None:
        """Take every socket out of the map."""
        self._alive()
        empty_map(self.spec.fd)
