"""Run-time statistics of loaded programs: how often they ran and what that cost.

The kernel counts run time and runs per program only while statistics are on,
either globally (the ``kernel.bpf_stats_enabled`` sysctl) or while some
process holds a ``BPF_ENABLE_STATS`` file descriptor. bpfnb uses the second,
so the setting ends with the Python process instead of outliving it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from .libbpf import check, libbpf

__all__ = ["ProgramInfo", "disable_stats", "enable_stats", "program_info", "stats_enabled"]

_BPF_STATS_RUN_TIME = 0
_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"

_lock = threading.Lock()
_stats_fd: int | None = None


@dataclass(frozen=True)
class ProgramInfo:
    """What the kernel reports about one loaded program through its fd."""

    prog_id: int
    prog_type: int
    tag: str
    run_count: int
    run_time_ns: int
    verified_insns: int
    memlock: int

    @property
    def average_ns(self) -> float | None:
        return self.run_time_ns / self.run_count if self.run_count else None


def program_info(fd: int) -> ProgramInfo:
    """Read ``/proc/self/fdinfo/<fd>`` of a program fd."""
    fields: dict[str, str] = {}
    with open(f"/proc/self/fdinfo/{fd}") as info:
        for line in info:
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    return ProgramInfo(
        prog_id=int(fields.get("prog_id", 0)),
        prog_type=int(fields.get("prog_type", 0)),
        tag=fields.get("prog_tag", ""),
        run_count=int(fields.get("run_cnt", 0)),
        run_time_ns=int(fields.get("run_time_ns", 0)),
        verified_insns=int(fields.get("verified_insns", 0)),
        memlock=int(fields.get("memlock", 0)),
    )


def stats_enabled() -> bool:
    """Whether the kernel is counting run time now (globally or for this process)."""
    if _stats_fd is not None:
        return True
    try:
        with open(_SYSCTL) as sysctl:
            return sysctl.read().strip() == "1"
    except OSError:
        return False


def enable_stats() -> None:
    """Make the kernel count every program's runs and run time while this process lives.

    Counting costs a few tens of nanoseconds per program run.
    """
    global _stats_fd
    with _lock:
        if _stats_fd is None:
            _stats_fd = check(libbpf().bpf_enable_stats(_BPF_STATS_RUN_TIME), "BPF_ENABLE_STATS")


def disable_stats() -> None:
    """Stop the counting :func:`enable_stats` started (a global sysctl setting stays)."""
    global _stats_fd
    with _lock:
        if _stats_fd is not None:
            os.close(_stats_fd)
            _stats_fd = None
