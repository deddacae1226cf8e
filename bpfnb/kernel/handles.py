"""File descriptors on the kernel objects local storage is keyed by: tasks, cgroups, sockets.

User space reads a task, cgroup or socket storage map one object at a time,
through an fd on that object (a pidfd, a cgroup directory, a socket); no
kernel call lists a storage map's objects. These functions reach every such
object this process may open, so a storage map can be read whole: each
:class:`Handle` names its object and holds an fd for the time of one lookup.
Other processes' sockets are reached with ``pidfd_getfd`` (root, or ptrace
rights over them).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cgroups import cgroup2_root, open_cgroup

__all__ = [
    "PIDFD_THREAD",
    "Handle",
    "cgroup_handles",
    "describe_socket",
    "process_name",
    "socket_cookie",
    "socket_handles",
    "task_handles",
]

_SYS_PIDFD_GETFD = 438  # x86_64 and every architecture with the unified syscall table
#: pidfd_open(2)'s flag for a pidfd on any thread, not only a thread-group leader (Linux 6.9).
PIDFD_THREAD = os.O_EXCL
_SO_COOKIE = 57


@dataclass
class Handle:
    """One kernel object: an id that names it across processes, columns that describe it, and an fd on it."""

    id: int
    fd: int
    columns: dict[str, object] = field(default_factory=dict)

    def close(self) -> None:
        os.close(self.fd)


def process_name(pid: int | str) -> str:
    """The ``comm`` of a process or thread, or "" once it has exited."""
    try:
        with open(f"/proc/{pid}/comm") as comm:
            return comm.read().rstrip("\n")
    except OSError:
        return ""


def _pids() -> list[int]:
    return sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())


@contextlib.contextmanager
def _opened(handles: Iterable[Handle]) -> Iterator[Iterator[Handle]]:
    """Iterate ``handles`` and close each one's fd after the caller is done with it, even on error."""
    current: list[Handle] = []

    def each() -> Iterator[Handle]:
        for handle in handles:
            current[:] = [handle]
            yield handle
            handle.close()
            current.clear()

    try:
        yield each()
    finally:
        for handle in current:
            handle.close()


def task_handles() -> contextlib.AbstractContextManager[Iterator[Handle]]:
    """Every thread of every process, by thread id (a pidfd on each, for task storage)."""
    return _opened(_tasks())


def _tasks() -> Iterator[Handle]:
    for pid in _pids():
        try:
            tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue  # exited meanwhile
        for tid in tids:
            try:
                fd = os.pidfd_open(tid, PIDFD_THREAD if tid != pid else 0)
            except OSError as exc:
                if exc.errno == errno.EINVAL and tid != pid:
                    continue  # a kernel before 6.9: only thread-group leaders have pidfds
                if exc.errno in (errno.ESRCH, errno.EINVAL):
                    continue
                raise
            yield Handle(tid, fd, {"pid": pid, "tid": tid, "comm": process_name(tid)})


def cgroup_handles() -> contextlib.AbstractContextManager[Iterator[Handle]]:
    """Every cgroup of the v2 hierarchy, by cgroup id (its directory's inode), with its path."""
    return _opened(_cgroups())


def _cgroups() -> Iterator[Handle]:
    root = cgroup2_root()
    for directory, _subdirs, _files in os.walk(root):
        try:
            fd = open_cgroup(Path(directory))
        except OSError:
            continue  # removed meanwhile
        path = "/" + os.path.relpath(directory, root) if directory != str(root) else "/"
        yield Handle(os.fstat(fd).st_ino, fd, {"cgroup": path})


def socket_handles(pids: Iterable[int] | None = None) -> contextlib.AbstractContextManager[Iterator[Handle]]:
    """Every socket the given processes (default: all) hold, once each, by socket cookie."""
    return _opened(_sockets(_pids() if pids is None else list(pids)))


def _sockets(pids: list[int]) -> Iterator[Handle]:
    seen: set[int] = set()
    own = os.getpid()
    for pid in pids:
        try:
            entries = list(os.scandir(f"/proc/{pid}/fd"))
            pidfd = os.pidfd_open(pid) if pid != own else -1
        except OSError:
            continue
        try:
            for entry in entries:
                handle = _socket_of(pid, pidfd, entry, seen)
                if handle is not None:
                    yield handle
        finally:
            if pidfd >= 0:
                os.close(pidfd)


def _socket_of(pid: int, pidfd: int, entry: os.DirEntry[str], seen: set[int]) -> Handle | None:
    try:
        target = os.readlink(entry.path)
    except OSError:
        return None
    if not target.startswith("socket:["):
        return None
    inode = int(target[len("socket:[") : -1])
    if inode in seen:
        return None
    seen.add(inode)
    number = int(entry.name)
    fd = os.dup(number) if pidfd < 0 else _pidfd_getfd(pidfd, number)
    if fd < 0:
        return None
    columns: dict[str, object] = {"pid": pid, "comm": process_name(pid), "fd": number}
    columns.update(describe_socket(fd))
    return Handle(socket_cookie(fd), fd, columns)


def _pidfd_getfd(pidfd: int, number: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    fd: int = libc.syscall(_SYS_PIDFD_GETFD, pidfd, number, 0)
    return fd


def socket_cookie(fd: int) -> int:
    """The kernel's id of the socket behind ``fd``: what ``bpf_get_socket_cookie`` returns and sockmaps show."""
    sock = socket.socket(fileno=fd)
    try:
        cookie: int = struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, _SO_COOKIE, 8))[0]
        return cookie
    finally:
        sock.detach()


def describe_socket(fd: int) -> dict[str, object]:
    """Family, type and addresses of the socket behind ``fd`` (``local``/``remote`` as ``host:port``)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        return {}  # a family Python cannot wrap
    try:
        return {
            "family": _name(sock.family, "AF_"),
            "type": _name(sock.type, "SOCK_"),
            "local": _address(sock.getsockname),
            "remote": _address(sock.getpeername),
        }
    finally:
        sock.detach()


def _name(number: int, prefix: str) -> str:
    name = getattr(number, "name", None)
    return name.removeprefix(prefix).lower() if name else str(int(number))


def _address(read: Callable[[], Any]) -> str:
    try:
        address = read()
    except OSError:
        return ""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, bytes):
        return address.decode(errors="replace").replace("\0", "@")
    return str(address)
