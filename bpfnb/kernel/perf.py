"""perf_event_open and the CPUs perf events are opened on.

``perf_event_open`` is a plain system call that libc does not wrap; it is
called through ``syscall(2)`` with the number of this architecture.
"""

from __future__ import annotations

import ctypes
import os
import platform

__all__ = ["PerfEventAttr", "online_cpus", "perf_event_open"]


_SYS_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331, "riscv64": 241}


class PerfEventAttr(ctypes.Structure):
    """``struct perf_event_attr`` up to ``config2`` (PERF_ATTR_SIZE_VER1, 72 bytes)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),  # or sample_freq with the freq flag
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),  # disabled = bit 0, freq = bit 10, watermark = bit 14
        ("wakeup_events", ctypes.c_uint32),  # or wakeup_watermark with the watermark flag
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),  # kprobe/uprobe PMU: address of the function or path
        ("config2", ctypes.c_uint64),  # kprobe/uprobe PMU: offset
    ]


def perf_event_open(attr: PerfEventAttr, *, pid: int, cpu: int, group_fd: int = -1, flags: int = 0) -> int:
    """Open a perf event (``attr.size`` is filled in); return its fd, which the caller closes.

    Raises ``OSError`` with the kernel's errno, or ``OSError(ENOSYS)`` on an
    architecture whose system call number is not known here.
    """
    number = _SYS_PERF_EVENT_OPEN.get(platform.machine())
    if number is None:
        raise OSError(38, f"perf_event_open: system call number on {platform.machine()} unknown to bpfnb")
    attr.size = ctypes.sizeof(attr)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(
        ctypes.c_long(number), ctypes.byref(attr), ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(group_fd), ctypes.c_ulong(flags)
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open: {os.strerror(err)}")
    return int(fd)


def online_cpus() -> list[int]:
    """The online CPUs, from ``/sys/devices/system/cpu/online`` (``0-3,6``)."""
    with open("/sys/devices/system/cpu/online") as f:
        text = f.read().strip()
    cpus: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus
