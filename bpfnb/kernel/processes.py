"""Process names for pids, read from ``/proc`` when a display needs them.

A map keyed by pid holds numbers only; a person wants to read ``1234
(nginx)``. :func:`process_names` reads ``/proc/<pid>/comm`` for each pid,
at most once every few seconds per pid, and keeps the last name it saw: a
process that exited since keeps the name it had (within the cache's bound),
which is what a plot of its past activity should show.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

__all__ = ["process_names"]

#: Seconds a name read from /proc is trusted before it is read again (pids are reused).
FRESH_FOR = 5.0
#: Pids whose names are kept; the least recently used go first.
KEPT = 65_536

_names: OrderedDict[int, tuple[str, float]] = OrderedDict()
_lock = threading.Lock()


def _read(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().rstrip("\n")
    except OSError:  # gone, or never was
        return None


def _keep(pid: int, name: str, when: float) -> None:
    _names[pid] = (name, when)
    _names.move_to_end(pid)
    while len(_names) > KEPT:
        _names.popitem(last=False)


def process_names(pids: Iterable[int]) -> dict[int, str]:
    """The names of the given pids that are running or were seen before; unknown pids are left out.

    Parameters
    ----------
    pids : iterable of int
        Process (or thread) ids; 0 is the idle task, named ``idle`` as the
        kernel's ``swapper`` is not a process people look for.
    """
    found: dict[int, str] = {}
    now = time.monotonic()
    with _lock:
        for pid in {int(p) for p in pids}:
            if pid == 0:
                found[pid] = "idle"
                continue
            if pid < 0:
                continue
            cached = _names.get(pid)
            if cached is None or now - cached[1] > FRESH_FOR:
                name = _read(pid)
                if name is not None:
                    _keep(pid, name, now)
                    cached = _names[pid]
            if cached is not None:
                found[pid] = cached[0]
    return found
