"""Where a program's functions attach: probe specifications and the attaching itself.

A :class:`Probe` says what to attach a function to. It comes either from an
explicit option (``--tracepoint sched:sched_switch=on_switch``) or from BCC's
naming convention (``tracepoint__sched__sched_switch``), which bpfnb applies
itself so that a failure half way can undo everything before it.

:func:`attach` returns an :class:`Attachment`. Most hooks are released by
``BPF.cleanup()``; XDP links and socket filters are not, so their
attachments carry their own ``undo``.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ._compile import captured_c_output
from ._environment import tracefs_dir
from ._exceptions import ArgumentError, AttachError
from ._libbpf import PROG_TYPES, link_create

if TYPE_CHECKING:
    import bcc

__all__ = ["PROBE_KINDS", "Attachment", "Probe", "attach", "program_type"]

# The program type each kind of hook loads its function as.
_PROGRAM_TYPES = {
    "socket_filter": "socket_filter",
    "kprobe": "kprobe",
    "kretprobe": "kprobe",
    "uprobe": "kprobe",
    "uretprobe": "kprobe",
    "tracepoint": "tracepoint",
    "xdp": "xdp",
    "perf_event": "perf_event",
    "raw_tracepoint": "raw_tracepoint",
    "kfunc": "tracing",
    "kretfunc": "tracing",
    "lsm": "lsm",
}

#: Options each kind of explicit probe accepts after its target.
PROBE_KINDS: dict[str, tuple[str, ...]] = {
    "kprobe": (),
    "kretprobe": (),
    "uprobe": ("pid",),
    "uretprobe": ("pid",),
    "tracepoint": (),
    "raw_tracepoint": (),
    "perf_event": ("freq", "period", "cpu", "pid"),
    "xdp": ("mode",),
    "socket_filter": (),
}

# BCC's function-name prefixes and the probe each one means, as BCC's auto-attach reads them.
_NAME_PREFIXES = {
    "kprobe__": "kprobe",
    "kretprobe__": "kretprobe",
    "tracepoint__": "tracepoint",
    "raw_tracepoint__": "raw_tracepoint",
    "kfunc__": "kfunc",
    "kretfunc__": "kretfunc",
    "lsm__": "lsm",
}

_XDP_MODES = {"auto": 0, "skb": 2, "generic": 2, "drv": 4, "native": 4, "hw": 8, "offload": 8}
_BPF_XDP = 37  # enum bpf_attach_type

_PERF_EVENTS = {
    "software": (1, {
        "cpu-clock": 0, "task-clock": 1, "page-faults": 2, "context-switches": 3,
        "cpu-migrations": 4, "minor-faults": 5, "major-faults": 6,
    }),
    "hardware": (0, {
        "cpu-cycles": 0, "instructions": 1, "cache-references": 2, "cache-misses": 3,
        "branch-instructions": 4, "branch-misses": 5, "bus-cycles": 6, "ref-cpu-cycles": 9,
    }),
}


def _tracefs_path(*parts: str) -> str:
    return os.path.join(tracefs_dir() or "/sys/kernel/tracing", *parts)


def program_type(kind: str) -> int:
    """The BPF_PROG_TYPE_* number a function attached as ``kind`` is loaded with."""
    return PROG_TYPES[_PROGRAM_TYPES[kind]]


@dataclass(frozen=True)
class Probe:
    """A request to attach one function of a program to one hook.

    Parameters
    ----------
    kind : str
        One of :data:`PROBE_KINDS`, or ``kfunc``/``kretfunc``/``lsm`` from BCC's naming.
    target : str
        What to attach to: ``category:event``, ``binary:symbol``, a device, ...
    function : str or None
        The C function; None means the program's only function left unclaimed.
    options : tuple of (str, str)
        Kind-specific settings such as ``("pid", "42")`` or ``("mode", "skb")``.
    """

    kind: str
    target: str
    function: str | None = None
    options: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def parse(cls, kind: str, spec: str) -> Probe:
        """Read ``TARGET[=FUNCTION][,key=value...]`` as written after ``--<kind>``."""
        if kind not in PROBE_KINDS:
            raise ArgumentError(f"unknown probe kind {kind!r}; expected one of {', '.join(PROBE_KINDS)}")
        head, *settings = spec.split(",")
        target, _, function = head.partition("=")
        if not target:
            raise ArgumentError(f"--{kind.replace('_', '-')} {spec!r}: the target is missing")
        options = []
        for setting in settings:
            key, sep, value = setting.partition("=")
            if not sep or key not in PROBE_KINDS[kind]:
                allowed = ", ".join(f"{k}=..." for k in PROBE_KINDS[kind]) or "no options"
                raise ArgumentError(f"--{kind.replace('_', '-')} {spec!r}: {setting!r} is not an option here ({allowed})")
            options.append((key, value))
        probe = cls(kind, target, function or None, tuple(options))
        probe._validate()
        return probe

    @classmethod
    def from_function_name(cls, name: str) -> Probe | None:
        """The probe BCC's naming convention implies for ``name``, if any."""
        for prefix, kind in _NAME_PREFIXES.items():
            if name.startswith(prefix):
                rest = name[len(prefix) :]
                target = rest.replace("__", ":", 1) if kind == "tracepoint" else rest
                return cls(kind, target, name)
        return None

    def option(self, key: str, default: str | None = None) -> str | None:
        return dict(self.options).get(key, default)

    def with_function(self, function: str) -> Probe:
        return replace(self, function=function)

    def _validate(self) -> None:
        if self.kind == "perf_event":
            _perf_event_type(self.target)
            if self.option("freq") and self.option("period"):
                raise ArgumentError("--perf-event takes freq= or period=, not both")
        if self.kind == "xdp" and self.option("mode", "auto") not in _XDP_MODES:
            raise ArgumentError(f"XDP mode {self.option('mode')!r}: expected one of {', '.join(_XDP_MODES)}")
        if self.kind in ("uprobe", "uretprobe") and ":" not in self.target:
            raise ArgumentError(f"--{self.kind} {self.target!r}: write BINARY:SYMBOL, for example c:malloc")
        if self.kind == "tracepoint" and ":" not in self.target:
            raise ArgumentError(f"--tracepoint {self.target!r}: write CATEGORY:EVENT, for example sched:sched_switch")
        for key in ("pid", "cpu", "freq", "period"):
            value = self.option(key)
            if value is not None and not value.lstrip("-").isdigit():
                raise ArgumentError(f"{key}={value!r} must be a whole number")

    def __str__(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options)
        return f"{self.kind} {self.target}{extra} -> {self.function}"


@dataclass
class Attachment:
    """A function attached to a hook; ``undo`` releases what BCC's cleanup would miss."""

    probe: Probe
    undo: Callable[[], None] | None = None
    socket_fd: int | None = None

    def release(self) -> None:
        if self.undo is not None:
            undo, self.undo = self.undo, None
            undo()


def attach(bpf: bcc.BPF, probe: Probe) -> Attachment:
    """Attach the already loaded ``probe.function`` of ``bpf`` to its hook."""
    attacher = _ATTACHERS[probe.kind]
    with _attach_errors(probe):
        return attacher(bpf, probe)


@contextlib.contextmanager
def _attach_errors(probe: Probe) -> Iterator[None]:
    try:
        with captured_c_output() as output:
            yield
    except AttachError:
        raise
    except Exception as exc:  # BCC raises bare Exception
        said = (output[0] if output else "").strip()
        raise AttachError(
            f"cannot attach {probe.function} to {probe.kind} {probe.target}: {exc}",
            details=said,
        ) from exc


def _kprobe(bpf: bcc.BPF, probe: Probe) -> Attachment:
    if not os.path.exists(_tracefs_path("kprobe_events")):
        raise AttachError(
            f"this kernel has no kprobes (CONFIG_KPROBES is off), so {probe.target} cannot be probed.",
            hint="Use a tracepoint (`%bpf probes` lists them) or a raw tracepoint instead.",
        )
    method = bpf.attach_kretprobe if probe.kind == "kretprobe" else bpf.attach_kprobe
    method(event=probe.target.encode(), fn_name=probe.function.encode())
    return Attachment(probe)


def _uprobe(bpf: bcc.BPF, probe: Probe) -> Attachment:
    binary, _, symbol = probe.target.rpartition(":")
    method = bpf.attach_uretprobe if probe.kind == "uretprobe" else bpf.attach_uprobe
    pid = int(probe.option("pid", "-1"))
    try:
        method(name=binary.encode(), sym=symbol.encode(), fn_name=probe.function.encode(), pid=pid)
    except Exception as exc:
        if "could not determine address" in str(exc) or "can't find" in str(exc).lower():
            raise AttachError(
                f"no symbol {symbol!r} in {binary!r} to put a {probe.kind} on.",
                hint=f"`%bpf probes --binary {binary}` lists the symbols a uprobe can use.",
            ) from exc
        raise
    return Attachment(probe)


def _tracepoint(bpf: bcc.BPF, probe: Probe) -> Attachment:
    category, _, event = probe.target.partition(":")
    if not os.path.isdir(_tracefs_path("events", category, event)):
        raise AttachError(
            f"there is no tracepoint {probe.target} on this kernel.",
            hint=f"`%bpf probes {category}:*` lists the tracepoints of {category!r}.",
        )
    bpf.attach_tracepoint(tp=probe.target.encode(), fn_name=probe.function.encode())
    return Attachment(probe)


def _raw_tracepoint(bpf: bcc.BPF, probe: Probe) -> Attachment:
    if not glob.glob(_tracefs_path("events", "*", probe.target)):
        raise AttachError(
            f"there is no raw tracepoint {probe.target} on this kernel.",
            hint="Raw tracepoints are named like tracepoints without their category: `%bpf probes` lists them.",
        )
    if probe.target.encode() in bpf.raw_tracepoint_fds:
        raise AttachError(f"BCC attaches one function per raw tracepoint and program; {probe.target} has one already.")
    bpf.attach_raw_tracepoint(tp=probe.target.encode(), fn_name=probe.function.encode())
    return Attachment(probe)


def _kfunc(bpf: bcc.BPF, probe: Probe) -> Attachment:
    method = {"kfunc": bpf.attach_kfunc, "kretfunc": bpf.attach_kretfunc, "lsm": bpf.attach_lsm}[probe.kind]
    method(fn_name=probe.function.encode())
    return Attachment(probe)


def _perf_event_type(target: str) -> tuple[int, int]:
    family, _, name = target.partition(":")
    if family not in _PERF_EVENTS:
        raise ArgumentError(f"perf event {target!r}: write software:NAME or hardware:NAME")
    type_id, configs = _PERF_EVENTS[family]
    if name.isdigit():
        return type_id, int(name)
    if name not in configs:
        raise ArgumentError(f"perf event {target!r}: {family} events are {', '.join(configs)}")
    return type_id, configs[name]


def _perf_event(bpf: bcc.BPF, probe: Probe) -> Attachment:
    ev_type, ev_config = _perf_event_type(probe.target)
    period = int(probe.option("period", "0"))
    freq = int(probe.option("freq", "0")) or (0 if period else 99)
    bpf.attach_perf_event(
        ev_type=ev_type,
        ev_config=ev_config,
        fn_name=probe.function.encode(),
        sample_period=period,
        sample_freq=freq,
        pid=int(probe.option("pid", "-1")),
        cpu=int(probe.option("cpu", "-1")),
    )
    return Attachment(probe)


def _require_device(device: str) -> None:
    try:
        socket.if_nametoindex(device)
    except OSError:
        raise AttachError(
            f"there is no network device named {device!r} in this network namespace.",
            hint="`ip link` lists the devices.",
        ) from None


def _xdp(bpf: bcc.BPF, probe: Probe) -> Attachment:
    _require_device(probe.target)
    fn = bpf.funcs[probe.function.encode()]
    # A link, unlike BCC's netlink attach, ends with its fd: a killed process
    # leaves no XDP program behind, and an existing program is never replaced.
    try:
        link = link_create(fn.fd, socket.if_nametoindex(probe.target), _BPF_XDP, flags=_XDP_MODES[probe.option("mode", "auto")])
    except OSError as exc:
        busy = " (it already has an XDP program)" if exc.errno == errno.EBUSY else ""
        raise AttachError(f"cannot attach XDP program {probe.function} to {probe.target}{busy}: {exc.strerror}") from None
    return Attachment(probe, undo=lambda: os.close(link))


def _socket_filter(bpf: bcc.BPF, probe: Probe) -> Attachment:
    _require_device(probe.target)
    fn = bpf.funcs[probe.function.encode()]
    bpf.attach_raw_socket(fn, probe.target.encode())
    sock = fn.sock
    return Attachment(probe, undo=lambda: os.close(sock), socket_fd=sock)


_ATTACHERS: dict[str, Callable[[bcc.BPF, Probe], Attachment]] = {
    "kprobe": _kprobe,
    "kretprobe": _kprobe,
    "uprobe": _uprobe,
    "uretprobe": _uprobe,
    "tracepoint": _tracepoint,
    "raw_tracepoint": _raw_tracepoint,
    "kfunc": _kfunc,
    "kretfunc": _kfunc,
    "lsm": _kfunc,
    "perf_event": _perf_event,
    "xdp": _xdp,
    "socket_filter": _socket_filter,
}
