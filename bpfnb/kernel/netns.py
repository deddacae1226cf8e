"""Network namespaces by the names people give them: ``ip netns`` names, paths, pids.

An ``sk_lookup`` program attaches to a network namespace through an fd on
it; ``ip netns add NAME`` leaves one at ``/var/run/netns/NAME``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import AttachError

__all__ = ["NETNS_DIR", "entered", "open_netns", "resolve_netns"]

#: Where ``ip netns`` keeps its named namespaces.
NETNS_DIR = Path("/var/run/netns")


def resolve_netns(name: str) -> Path:
    """The file of network namespace ``name``: a path, an ``ip netns`` name, ``self`` or a pid."""
    if "/" in name:
        path = Path(name)
    elif name == "self" or name.isdigit():
        path = Path(f"/proc/{name}/ns/net")
    else:
        path = NETNS_DIR / name
    if not path.exists():
        raise AttachError(
            f"there is no network namespace {name!r} ({path} does not exist).",
            hint=f"create one with: ip netns add {name}" if path.parent == NETNS_DIR else "`ip netns list` lists them",
        )
    return path


def open_netns(path: Path) -> int:
    """An fd on a network namespace, for attaching programs to it."""
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def entered(name: str) -> Iterator[Path]:
    """Run the body in network namespace ``name`` (this thread only): sockets made there stay there."""
    libc = ctypes.CDLL(None, use_errno=True)
    target = resolve_netns(name)
    home = open_netns(Path(f"/proc/self/task/{threading.get_native_id()}/ns/net"))
    try:
        fd = open_netns(target)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise AttachError(f"cannot enter network namespace {name}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(fd)
        try:
            yield target
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to this thread's network namespace")
    finally:
        os.close(home)
