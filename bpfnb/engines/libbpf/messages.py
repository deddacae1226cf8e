"""Capture what libbpf prints, per call, from any thread.

libbpf has one process-wide print callback (``libbpf_set_print``). The engine
installs one callback, once, and routes each message to whoever is capturing
*on the calling thread*: libbpf calls the callback synchronously on the
thread that called into libbpf, so two threads loading two objects at once
each get their own messages. Messages nobody captures go to the
``bpfnb.libbpf`` logger.

The callback receives a C ``va_list``: it is formatted with the C library's
``vasprintf``, which sizes its own buffer (a verifier log can be megabytes)
and, unlike a measure-then-format pair of ``vsnprintf`` calls, reads the
``va_list`` only once, as C requires without a ``va_copy``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .bindings import PRINT_FN, libbpf

__all__ = ["LibbpfMessage", "capture_libbpf_output"]

#: ``enum libbpf_print_level``.
LEVELS = ("warn", "info", "debug")
_LOGGING_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)

_logger = logging.getLogger("bpfnb.libbpf")
_local = threading.local()
_install_lock = threading.Lock()
# The installed CFUNCTYPE object: libbpf keeps only the C pointer, so the
# Python object must live as long as the process or the callback is freed.
_installed: object | None = None


@dataclass(frozen=True)
class LibbpfMessage:
    """One message libbpf printed.

    Attributes
    ----------
    level
        ``"warn"``, ``"info"`` or ``"debug"``.
    text
        The formatted message, usually ending in a newline.
    """

    level: str
    text: str


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.vasprintf.restype = ctypes.c_int
    libc.vasprintf.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_void_p]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


_LIBC = _libc()


def _on_print(level: int, fmt: int | None, args: int | None) -> int:
    # An exception must not cross back into C: ctypes would only print it.
    try:
        formatted = ctypes.c_void_p()
        length = _LIBC.vasprintf(ctypes.byref(formatted), fmt, args)
        if length < 0:
            return 0
        try:
            text = ctypes.string_at(formatted, length).decode(errors="replace")
        finally:
            _LIBC.free(formatted)
        level = min(max(level, 0), 2)
        sink = getattr(_local, "sink", None)
        if sink is not None:
            sink.append(LibbpfMessage(LEVELS[level], text))
        else:
            _logger.log(_LOGGING_LEVELS[level], "%s", text.rstrip("\n"))
    except Exception:
        _logger.exception("formatting a libbpf message failed")
    return 0


def _install() -> None:
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = PRINT_FN(_on_print)
        # Set it again every time: anything else in the process that uses
        # libbpf.so.1 may have replaced it. BCC does, with NULL, whenever it
        # builds a module.
        libbpf().libbpf_set_print(_installed)


@contextlib.contextmanager
def capture_libbpf_output() -> Iterator[list[LibbpfMessage]]:
    """Collect every message libbpf prints on this thread inside the block.

    Yields
    ------
    list of LibbpfMessage
        Filled as libbpf prints, all levels (debug included: libbpf explains
        CO-RE relocations and lists valid section names at debug level).

    Notes
    -----
    Captures nest: an inner block collects its own messages, and the outer
    block resumes collecting after it. The callback is (re)installed on
    entry and left installed on exit: restoring a previous one would undo a
    capture another thread has just begun.
    """
    _install()
    outer = getattr(_local, "sink", None)
    sink: list[LibbpfMessage] = []
    _local.sink = sink
    try:
        yield sink
    finally:
        _local.sink = outer
