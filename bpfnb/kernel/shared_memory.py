"""Memory that a kernel object shares with this process: ring buffers, perf rings, mmapable maps."""

from __future__ import annotations

import ctypes
import mmap
import os

import numpy as np
import numpy.typing as npt

__all__ = ["SharedMapping"]

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.mmap.restype = ctypes.c_void_p
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.munmap.restype = ctypes.c_int
_MAP_FAILED = ctypes.c_void_p(-1).value


class SharedMapping:
    """A shared mapping of part of a file descriptor, unmapped by :meth:`close`.

    libc's ``mmap`` is used instead of Python's because the latter keeps a
    duplicate of the fd open and refuses to unmap while numpy views exist;
    here the owner decides when the views are dead.
    """

    def __init__(self, fd: int, length: int, *, offset: int = 0, writable: bool = False) -> None:
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        address = _libc.mmap(None, length, prot, mmap.MAP_SHARED, fd, offset)
        if address in (None, _MAP_FAILED):
            err = ctypes.get_errno()
            raise OSError(err, f"mmap of fd {fd}: {os.strerror(err)}")
        self.address: int = address
        self.length = length

    def array(self, dtype: npt.DTypeLike = np.uint8, *, offset: int = 0, count: int = -1) -> np.ndarray:
        """A numpy view of the mapping; valid only until :meth:`close`."""
        size = self.length - offset if count < 0 else count * np.dtype(dtype).itemsize
        buffer = (ctypes.c_char * size).from_address(self.address + offset)
        view: np.ndarray = np.frombuffer(memoryview(buffer).cast("B"), dtype=dtype)
        return view

    def close(self) -> None:
        """Unmap (idempotent)."""
        if self.address:
            _libc.munmap(self.address, self.length)
            self.address = 0
