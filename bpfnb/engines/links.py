"""Attachments every engine makes the same way, from a program's fd: links, socket filters, sockmaps.

BCC's own attach calls and libbpf's ``bpf_program__attach_*`` cover the
tracing hooks; the hooks here (XDP, cgroups, network namespaces, sockmaps,
sockets) are attached by bpfnb itself so that they end with their fd
whichever engine loaded the program: a BPF link, unlike a netlink or
``BPF_PROG_ATTACH`` attachment, goes when the process does.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AttachError
from ..kernel.cgroups import open_cgroup, resolve_cgroup
from ..kernel.constants import ATTACH_TYPES, MAP_TYPE_IDS, XDP_FLAGS, map_type_name
from ..kernel.libbpf import empty_map, link_create, map_info, prog_attach, prog_detach
from ..kernel.netns import open_netns, resolve_netns
from .hooks import Probe

__all__ = ["Attachment", "attach_cgroup", "attach_netns", "attach_sockmap", "attach_socket_filter", "attach_xdp"]

_SO_ATTACH_BPF = 50  # asm-generic/socket.h
_ETH_P_ALL = 0x0003


@dataclass
class Attachment:
    """A function attached to a hook; ``undo`` releases what the engine's own cleanup would miss."""

    probe: Probe
    undo: Callable[[], None] | None = None
    socket_fd: int | None = None

    def release(self) -> None:
        if self.undo is not None:
            undo, self.undo = self.undo, None
            undo()


def _link(prog_fd: int, target_fd: int, attach_type: int, probe: Probe, where: str) -> Attachment:
    try:
        link = link_create(prog_fd, target_fd, attach_type)
    except OSError as exc:
        raise _refused(probe, where, exc) from None
    return Attachment(probe, undo=lambda: os.close(link))


def attach_cgroup(prog_fd: int, probe: Probe, attach_type: int) -> Attachment:
    """Attach a cgroup program to the cgroup ``probe.target`` names, as ``attach_type``."""
    path = resolve_cgroup(probe.target)
    # The link holds the cgroup; the directory's fd is only needed to make it.
    fd = open_cgroup(path)
    try:
        return _link(prog_fd, fd, attach_type, probe, f"cgroup {path} ({probe.option('type')})")
    finally:
        os.close(fd)


def attach_netns(prog_fd: int, probe: Probe) -> Attachment:
    """Attach an ``sk_lookup`` program to the network namespace ``probe.target`` names."""
    path = resolve_netns(probe.target)
    fd = open_netns(path)
    try:
        return _link(prog_fd, fd, ATTACH_TYPES["sk_lookup"], probe, f"network namespace {probe.target}")
    finally:
        os.close(fd)


_SOCKMAPS = {MAP_TYPE_IDS["sockmap"], MAP_TYPE_IDS["sockhash"]}


def attach_sockmap(prog_fd: int, probe: Probe, map_fd: int) -> Attachment:
    """Attach an ``sk_msg``/``sk_skb`` program to the sockmap or sockhash behind ``map_fd``."""
    kind = map_info(map_fd).type
    if kind not in _SOCKMAPS:
        raise AttachError(
            f"{probe.kind} programs attach to a sockmap or sockhash; {probe.target} is a {map_type_name(kind)}.",
            hint="declare it with BPF_SOCKMAP/BPF_SOCKHASH (BCC) or __uint(type, BPF_MAP_TYPE_SOCKMAP) (libbpf)",
        )
    attach_type = probe.attach_type
    assert attach_type is not None, "sk_msg and sk_skb hooks have an attach type"
    where = f"{probe.kind} of map {probe.target}"
    try:
        link = link_create(prog_fd, map_fd, attach_type)
        detach = functools.partial(os.close, link)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
            raise _refused(probe, where, exc) from None
        # Kernels before 6.10 have no sockmap links: attach to the map itself.
        try:
            prog_attach(prog_fd, map_fd, attach_type)
        except OSError as exc:
            raise _refused(probe, where, exc) from None
        detach = functools.partial(prog_detach, prog_fd, map_fd, attach_type)

    def undo() -> None:
        detach()
        # Each socket in the map keeps the programs it was added under, and
        # keeps them running, until it leaves the map: empty it, or the
        # sockets' owners would go on being redirected by a detached program.
        empty_map(map_fd)

    return Attachment(probe, undo=undo)


def _refused(probe: Probe, where: str, exc: OSError) -> AttachError:
    busy = " (it has one of this kind already)" if exc.errno == errno.EBUSY else ""
    return AttachError(f"cannot attach {probe.function} to {where}{busy}: {exc.strerror}")


def attach_xdp(prog_fd: int, probe: Probe) -> Attachment:
    """Attach an XDP program to ``probe.target`` (a device) through a BPF link."""
    # A link, unlike a netlink attach, ends with its fd: a killed process
    # leaves no XDP program behind, and an existing program is never replaced.
    try:
        link = link_create(
            prog_fd, socket.if_nametoindex(probe.target), ATTACH_TYPES["xdp"], flags=XDP_FLAGS[probe.option("mode") or "auto"]
        )
    except OSError as exc:
        busy = " (it already has an XDP program)" if exc.errno == errno.EBUSY else ""
        raise AttachError(
            f"cannot attach XDP program {probe.function} to {probe.target}{busy}: {exc.strerror}",
            hook=(probe.kind, probe.target),
        ) from None
    return Attachment(probe, undo=lambda: os.close(link))


def attach_socket_filter(prog_fd: int, probe: Probe) -> Attachment:
    """Attach a socket filter to a raw socket bound to ``probe.target``; read what passes from ``socket_fd``."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.htons(_ETH_P_ALL))
    try:
        sock.bind((probe.target, _ETH_P_ALL))
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, prog_fd)
    except OSError as exc:
        sock.close()
        raise AttachError(f"cannot attach socket filter {probe.function} to {probe.target}: {exc.strerror}") from None
    fd = sock.detach()
    return Attachment(probe, undo=lambda: os.close(fd), socket_fd=fd)
