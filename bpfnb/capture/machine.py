"""What a capture says about the machine that recorded it: the kernel build, the host, the clocks.

Read once when a recording starts. Everything here is readable without
privileges; what a machine does not have (no BTF, no headers) is recorded as
null rather than failing the recording.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from pathlib import Path
from typing import Any

from ..decode.decoders import clock_offset_ns
from ..errors import SetupError
from ..kernel.environment import find_kernel_headers, kernel_btf_key
from ..kernel.symbols import syscall_names

__all__ = ["machine_facts", "time_base"]

_NOTES = Path("/sys/kernel/notes")
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_NT_GNU_BUILD_ID = 3


def kernel_build_id(notes: Path = _NOTES) -> str | None:
    """The running kernel's GNU build id, from its ELF notes (hex), or None where they cannot be read."""
    try:
        data = notes.read_bytes()
    except OSError:
        return None
    offset = 0
    while offset + 12 <= len(data):
        namesz, descsz, kind = struct.unpack_from("<III", data, offset)
        offset += 12
        name = data[offset : offset + namesz].rstrip(b"\0")
        offset += -(-namesz // 4) * 4
        desc = data[offset : offset + descsz]
        offset += -(-descsz // 4) * 4
        if kind == _NT_GNU_BUILD_ID and name == b"GNU":
            return desc.hex()
    return None


def _btf_id() -> str | None:
    try:
        return kernel_btf_key()
    except SetupError:
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def machine_facts() -> dict[str, Any]:
    """The manifest's ``machine``: host, boot, kernel build and headers, and the names of numbers."""
    uname = os.uname()
    headers = find_kernel_headers()
    return {
        "hostname": socket.gethostname(),
        "boot_id": _read(_BOOT_ID),
        "kernel": {
            "release": uname.release,
            "version": uname.version,
            "machine": uname.machine,
            "build_id": kernel_build_id(),
            "btf_id": _btf_id(),
        },
        "headers": {
            "path": headers.path,
            "release": headers.release,
            "matches": headers.matches,
        },
        # Decoders of a loaded capture name numbers as this machine did.
        "syscalls": {str(n): name for n, name in sorted(syscall_names().items())},
        "errno": {str(n): name for n, name in sorted(errno.errorcode.items())},
    }


def time_base() -> dict[str, int]:
    """Wall-clock ns minus each kernel clock's ns now: kernel timestamps plus these are UTC epoch ns."""
    return {clock: clock_offset_ns(clock) for clock in ("boottime", "monotonic")}
