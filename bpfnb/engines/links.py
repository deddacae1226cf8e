"""Attachments every engine makes the same way, from a program's fd: XDP links and socket filters.

BCC's own attach calls and libbpf's ``bpf_program__attach_*`` cover the
tracing hooks; these hooks are attached by bpfnb itself so that they end
with their fd (an XDP link, unlike a netlink attach, goes when the process
does) whichever engine loaded the program.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AttachError
from ..kernel.constants import ATTACH_TYPES, XDP_FLAGS
from ..kernel.libbpf import link_create
from .hooks import Probe

__all__ = ["Attachment", "attach_socket_filter", "attach_xdp"]

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
