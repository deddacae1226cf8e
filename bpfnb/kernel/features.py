"""Find out which attach types the running kernel really allows, by trying them.

Kernel configuration and version numbers say what *should* work; loading a
two-instruction program (``r0 = N; exit``) of each type and attaching it to a
harmless hook says what *does*. Every probe closes everything it opened before
it returns, whatever happens. The whole set takes about a quarter of a
second (mostly registering the uprobe and the tracepoint event) and is cached
per process (:func:`try_attach_types`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from . import libbpf as _libbpf
from .constants import (
    ATTACH_TYPES,
    PERF_ATTR_DISABLED,
    PERF_ATTR_FREQ,
    PERF_EVENT_IOC_SET_BPF,
    PERF_TYPE_SOFTWARE,
    PERF_TYPE_TRACEPOINT,
    PROG_TYPES,
    XDP_PASS,
)
from .environment import kernel_config, mounts, tracefs_dir
from .perf import PerfEventAttr, perf_event_open

__all__ = ["AttachTypeResult", "try_attach_types"]

_SO_ATTACH_BPF = 50  # asm-generic/socket.h
_PMU_DIR = "/sys/bus/event_source/devices"
_REFUSALS = {errno.EPERM, errno.EACCES}
# Errors that, for a trivial program on a harmless hook, mean the kernel lacks
# the feature (524 is the kernel-internal ENOTSUPP that leaks to user space).
_MISSING = {errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP, errno.ENOSYS, 524}


@dataclass(frozen=True)
class AttachTypeResult:
    """What happened when one attach type was tried."""

    attach: str
    """The attach type, as ``%%bpf`` options name it (``tracepoint``, ``kprobe``...)."""
    verdict: str
    """``ok``, ``unavailable`` (the kernel lacks it), ``refused`` (EPERM/EACCES) or ``failed``."""
    reason: str
    """What was tried, or why it did not work."""

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


class _NotHere(Exception):
    """A probe's precondition is missing; the message says which."""

    def __init__(self, verdict: str, reason: str) -> None:
        super().__init__(reason)
        self.verdict = verdict
        self.reason = reason


def _return(value: int) -> bytes:
    """``r0 = value; exit``."""
    return struct.pack("<BBhi", 0xB7, 0, 0, value) + struct.pack("<BBhi", 0x95, 0, 0, 0)


def _verdict(err: int) -> str:
    if err in _REFUSALS:
        return "refused"
    return "unavailable" if err in _MISSING else "failed"


def _os_error(exc: OSError, what: str) -> _NotHere:
    err = exc.errno or 0
    return _NotHere(_verdict(err), f"{what}: {errno.errorcode.get(err, err)} ({os.strerror(err)})")


def _load(
    stack: contextlib.ExitStack, prog_type: int, *, value: int = 0, expected_attach_type: int = 0, attach_btf_id: int = 0
) -> int:
    fd, err, _ = _libbpf.prog_load(
        prog_type, _return(value), expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id
    )
    if fd < 0:
        raise _os_error(OSError(err, os.strerror(err)), "loading a trivial program failed")
    stack.callback(os.close, fd)
    return fd


def _perf_event_open(stack: contextlib.ExitStack, attr: PerfEventAttr, *, pid: int, cpu: int) -> int:
    try:
        fd = perf_event_open(attr, pid=pid, cpu=cpu)
    except OSError as exc:
        raise _os_error(exc, "perf_event_open failed") from None
    stack.callback(os.close, fd)
    return fd


def _set_bpf(perf_fd: int, prog_fd: int) -> None:
    try:
        fcntl.ioctl(perf_fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
    except OSError as exc:
        raise _os_error(exc, "attaching to the perf event failed") from None


def _pmu_type(name: str, missing: str) -> int:
    try:
        with open(os.path.join(_PMU_DIR, name, "type")) as f:
            return int(f.read())
    except OSError:
        raise _NotHere("unavailable", missing) from None


def _config_says_off(option: str) -> bool:
    found = kernel_config()
    return found is not None and found[1].get(option, "n") == "n"


def _probe_tracepoint(stack: contextlib.ExitStack) -> str:
    tracefs = tracefs_dir()
    if tracefs is None and mounts("tracefs"):
        raise _NotHere("refused", "tracefs is mounted but this process may not read it")
    if tracefs is None:
        raise _NotHere("unavailable", "tracefs is not mounted (`bpfnb doctor --fix` mounts it)")
    with open(os.path.join(tracefs, "events/raw_syscalls/sys_enter/id")) as f:
        tp_id = int(f.read())
    prog = _load(stack, PROG_TYPES["tracepoint"])
    attr = PerfEventAttr(type=PERF_TYPE_TRACEPOINT, config=tp_id, sample_period=1, flags=PERF_ATTR_DISABLED)
    _set_bpf(_perf_event_open(stack, attr, pid=-1, cpu=0), prog)
    return "attached to raw_syscalls:sys_enter"


def _probe_raw_tracepoint(stack: contextlib.ExitStack) -> str:
    prog = _load(stack, PROG_TYPES["raw_tracepoint"])
    try:
        stack.callback(os.close, _libbpf.raw_tracepoint_open("sys_enter", prog))
    except OSError as exc:
        raise _os_error(exc, "attaching failed") from None
    return "attached to sys_enter"


def _probe_btf_tracing(stack: contextlib.ExitStack, *, attach_type: int, target: str) -> None:
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise _NotHere("unavailable", "no kernel BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF is off)")
    try:
        btf_id = _libbpf.vmlinux_btf_id(target, attach_type)
    except OSError as exc:
        raise _os_error(exc, f"{target} is not in the kernel's BTF") from None
    prog = _load(stack, PROG_TYPES["tracing"], expected_attach_type=attach_type, attach_btf_id=btf_id)
    try:
        stack.callback(os.close, _libbpf.raw_tracepoint_open(None, prog))
    except OSError as exc:
        raise _os_error(exc, "attaching failed") from None


def _probe_tp_btf(stack: contextlib.ExitStack) -> str:
    _probe_btf_tracing(stack, attach_type=ATTACH_TYPES["trace_raw_tp"], target="sys_enter")
    return "attached to sys_enter"


def _probe_fentry(stack: contextlib.ExitStack) -> str:
    _probe_btf_tracing(stack, attach_type=ATTACH_TYPES["trace_fentry"], target="vfs_read")
    return "attached to vfs_read"


def _probe_kprobe(stack: contextlib.ExitStack) -> str:
    if _config_says_off("CONFIG_KPROBES"):
        raise _NotHere("unavailable", "CONFIG_KPROBES is off")
    pmu = _pmu_type("kprobe", f"this kernel has no kprobe PMU ({_PMU_DIR}/kprobe)")
    prog = _load(stack, PROG_TYPES["kprobe"])
    target = ctypes.create_string_buffer(b"vfs_read")
    attr = PerfEventAttr(type=pmu, config1=ctypes.addressof(target), sample_period=1, flags=PERF_ATTR_DISABLED)
    _set_bpf(_perf_event_open(stack, attr, pid=-1, cpu=0), prog)
    return "attached to vfs_read"


def _probe_uprobe(stack: contextlib.ExitStack) -> str:
    if _config_says_off("CONFIG_UPROBES"):
        raise _NotHere("unavailable", "CONFIG_UPROBES is off")
    pmu = _pmu_type("uprobe", f"this kernel has no uprobe PMU ({_PMU_DIR}/uprobe)")
    path, offset = _libc_symbol_offset("getpid")
    prog = _load(stack, PROG_TYPES["kprobe"])
    target = ctypes.create_string_buffer(path.encode())
    attr = PerfEventAttr(
        type=pmu, config1=ctypes.addressof(target), config2=offset, sample_period=1, flags=PERF_ATTR_DISABLED
    )
    _set_bpf(_perf_event_open(stack, attr, pid=os.getpid(), cpu=-1), prog)
    return f"attached to getpid in {path}"


def _libc_symbol_offset(symbol: str) -> tuple[str, int]:
    """The file and file offset of libc's ``symbol`` as mapped into this process."""
    address = ctypes.cast(getattr(ctypes.CDLL(None), symbol), ctypes.c_void_p).value or 0
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end and len(fields) >= 6:
                return fields[5], address - start + int(fields[2], 16)
    raise _NotHere("failed", f"{symbol} is not in a file mapping of this process")


def _probe_perf_event(stack: contextlib.ExitStack) -> str:
    prog = _load(stack, PROG_TYPES["perf_event"])
    attr = PerfEventAttr(type=PERF_TYPE_SOFTWARE, config=0, sample_period=49, flags=PERF_ATTR_DISABLED | PERF_ATTR_FREQ)
    _set_bpf(_perf_event_open(stack, attr, pid=-1, cpu=0), prog)
    return "attached to software cpu-clock sampling on CPU 0"


def _probe_xdp(stack: contextlib.ExitStack) -> str:
    prog = _load(stack, PROG_TYPES["xdp"], value=XDP_PASS)
    try:
        retval = _libbpf.prog_test_run(prog, bytes(64))[0]
    except OSError as exc:
        raise _os_error(exc, "BPF_PROG_TEST_RUN failed") from None
    if retval != XDP_PASS:
        raise _NotHere("failed", f"test run returned {retval}, not XDP_PASS")
    return "loaded and test-run (XDP_PASS); attaching to a device needs CAP_NET_ADMIN"


def _probe_socket_filter(stack: contextlib.ExitStack) -> str:
    prog = _load(stack, PROG_TYPES["socket_filter"])
    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_BPF, struct.pack("i", prog))
    except OSError as exc:
        raise _os_error(exc, "SO_ATTACH_BPF failed") from None
    return "attached to a UDP socket"


_PROBES: dict[str, Callable[[contextlib.ExitStack], str]] = {
    "tracepoint": _probe_tracepoint,
    "raw_tracepoint": _probe_raw_tracepoint,
    "tp_btf": _probe_tp_btf,
    "kprobe": _probe_kprobe,
    "fentry": _probe_fentry,
    "uprobe": _probe_uprobe,
    "perf_event": _probe_perf_event,
    "xdp": _probe_xdp,
    "socket_filter": _probe_socket_filter,
}


def _run(attach: str, probe: Callable[[contextlib.ExitStack], str]) -> AttachTypeResult:
    try:
        with contextlib.ExitStack() as stack:
            return AttachTypeResult(attach, "ok", probe(stack))
    except _NotHere as exc:
        return AttachTypeResult(attach, exc.verdict, exc.reason)
    except OSError as exc:
        return AttachTypeResult(attach, "failed", str(exc))


@functools.lru_cache(maxsize=1)
def try_attach_types() -> tuple[AttachTypeResult, ...]:
    """Try every attach type once; cached for the process (``.cache_clear()`` to redo).

    Returns
    -------
    tuple of AttachTypeResult
        One per attach type, in the order ``%%bpf`` documents them.
    """
    return tuple(_run(attach, probe) for attach, probe in _PROBES.items())

