"""Ctrl-C while bpfnb holds kernel objects half made: noted, and acted on once they can be released.

A ``KeyboardInterrupt`` raised between two lines of BCC's or libbpf's
Python wrappers would leave a module or an object that no one can close
(maps stay in the kernel). Inside :func:`deferred_interrupts` Ctrl-C only
sets a flag; the caller releases what it made and then raises
:class:`bpfnb.Interrupted`.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Flag", "deferred_interrupts"]


class Flag:
    """Whether Ctrl-C came while it was deferred; true in a boolean context."""

    def __init__(self) -> None:
        self.raised = False

    def __bool__(self) -> bool:
        return self.raised


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[Flag]:
    """Within the block, Ctrl-C sets the yielded flag instead of raising.

    Only the main thread receives ``KeyboardInterrupt``: elsewhere the block
    changes nothing (the flag stays false).
    """
    flag = Flag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def note(_signum: int, _frame: FrameType | None) -> None:
        flag.raised = True

    previous = signal.signal(signal.SIGINT, note)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
