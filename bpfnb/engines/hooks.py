"""Hooks a program's functions attach to: the :class:`Probe` request, the same for every engine.

A Probe comes from an explicit option (``--tracepoint sched:sched_switch=on_switch``,
``bpfnb.Probe("tracepoint", "sched:sched_switch", "on_switch")``) or from an
engine's own naming (BCC's ``tracepoint__sched__sched_switch``). Engines turn
Probes into attachments; this module only says what a Probe means.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, replace

from ..errors import ArgumentError, AttachError, did_you_mean
from ..kernel.constants import ATTACH_TYPES, PERF_EVENTS, PROG_TYPES, XDP_FLAGS
from ..kernel.perf import online_cpus
from ..kernel.tracefs import has_kprobes, has_raw_tracepoint, has_tracepoint, resolve_binary, similar_tracepoints

__all__ = [
    "BPFTRACE",
    "CGROUP_HOOKS",
    "PROBE_KINDS",
    "SECTION",
    "SK_SKB_HOOKS",
    "Probe",
    "cgroup_hook_named",
    "perf_event_type",
    "require_target",
]

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
    "cgroup": ("type",),
    "sk_msg": (),
    "sk_skb": ("type",),
    "sk_lookup": (),
}

#: What ``--cgroup PATH=FUNCTION,type=T`` attaches to, by T (libbpf's ``SEC("cgroup/T")`` suffix):
#: the program type such a function is loaded as, and the kernel's attach type.
CGROUP_HOOKS: dict[str, tuple[str, str]] = {
    "ingress": ("cgroup_skb", "cgroup_inet_ingress"),
    "egress": ("cgroup_skb", "cgroup_inet_egress"),
    "sock_create": ("cgroup_sock", "cgroup_inet_sock_create"),
    "sock_release": ("cgroup_sock", "cgroup_inet_sock_release"),
    "post_bind4": ("cgroup_sock", "cgroup_inet4_post_bind"),
    "post_bind6": ("cgroup_sock", "cgroup_inet6_post_bind"),
    "bind4": ("cgroup_sock_addr", "cgroup_inet4_bind"),
    "bind6": ("cgroup_sock_addr", "cgroup_inet6_bind"),
    "connect4": ("cgroup_sock_addr", "cgroup_inet4_connect"),
    "connect6": ("cgroup_sock_addr", "cgroup_inet6_connect"),
    "connect_unix": ("cgroup_sock_addr", "cgroup_unix_connect"),
    "sendmsg4": ("cgroup_sock_addr", "cgroup_udp4_sendmsg"),
    "sendmsg6": ("cgroup_sock_addr", "cgroup_udp6_sendmsg"),
    "sendmsg_unix": ("cgroup_sock_addr", "cgroup_unix_sendmsg"),
    "recvmsg4": ("cgroup_sock_addr", "cgroup_udp4_recvmsg"),
    "recvmsg6": ("cgroup_sock_addr", "cgroup_udp6_recvmsg"),
    "recvmsg_unix": ("cgroup_sock_addr", "cgroup_unix_recvmsg"),
    "getpeername4": ("cgroup_sock_addr", "cgroup_inet4_getpeername"),
    "getpeername6": ("cgroup_sock_addr", "cgroup_inet6_getpeername"),
    "getsockname4": ("cgroup_sock_addr", "cgroup_inet4_getsockname"),
    "getsockname6": ("cgroup_sock_addr", "cgroup_inet6_getsockname"),
    "getsockopt": ("cgroup_sockopt", "cgroup_getsockopt"),
    "setsockopt": ("cgroup_sockopt", "cgroup_setsockopt"),
    "sysctl": ("cgroup_sysctl", "cgroup_sysctl"),
    "dev": ("cgroup_device", "cgroup_device"),
    "sock_ops": ("sock_ops", "cgroup_sock_ops"),
}


def cgroup_hook_named(prog_type: int, attach_type: int) -> str | None:
    """The ``type=`` of :data:`CGROUP_HOOKS` a program of ``prog_type`` loaded for ``attach_type`` attaches as."""
    for name, (program, attach) in CGROUP_HOOKS.items():
        if PROG_TYPES[program] == prog_type and ATTACH_TYPES[attach] == attach_type:
            return name
    return None


#: What ``--sk-skb MAP=FUNCTION,type=T`` attaches to, by T: the kernel's attach type.
SK_SKB_HOOKS: dict[str, str] = {"verdict": "sk_skb_stream_verdict", "parser": "sk_skb_stream_parser"}

# The program type a function attached as each kind of hook is loaded as.
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
    "sk_msg": "sk_msg",
    "sk_skb": "sk_skb",
    "sk_lookup": "sk_lookup",
}


#: The kind of the hooks a libbpf program attaches to by its SEC() name (the target is the section).
SECTION = "section"
#: The kind of the hooks of a bpftrace script, named as the script names them (the target is the probe as
#: written, e.g. ``tracepoint:sched:sched_switch``); bpftrace checks them.
BPFTRACE = "bpftrace"
#: A target of each kind, for messages.
_EXAMPLES = {
    "tracepoint": "sched:sched_switch",
    "uprobe": "c:malloc",
    "xdp": "veth0",
    "perf_event": "software:cpu-clock",
    "cgroup": "/sys/fs/cgroup/unified/demo",
    "sk_msg": "sock_map",
    "sk_skb": "sock_map",
    "sk_lookup": "/var/run/netns/demo",
}


def _spans(numbers: list[int]) -> str:
    """``0-3,6`` for [0, 1, 2, 3, 6]."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def perf_event_type(target: str) -> tuple[int, int]:
    """``(perf type, config)`` of a ``--perf-event`` target such as ``software:cpu-clock``."""
    family, _, name = target.partition(":")
    if family not in PERF_EVENTS:
        raise ArgumentError(f"perf event {target!r}: write software:NAME or hardware:NAME")
    type_id, configs = PERF_EVENTS[family]
    if name.isdigit():
        return type_id, int(name)
    if name not in configs:
        raise ArgumentError(f"perf event {target!r}: {family} events are {', '.join(configs)}")
    return type_id, configs[name]


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

    def __post_init__(self) -> None:
        if self.kind == BPFTRACE:
            return
        if self.kind not in _PROGRAM_TYPES and self.kind not in (SECTION, "cgroup"):
            raise ArgumentError(f"unknown probe kind {self.kind!r}; expected one of {', '.join(PROBE_KINDS)}")
        if not isinstance(self.target, str) or not self.target:
            raise ArgumentError(f"a {self.kind} probe needs a target such as {_EXAMPLES.get(self.kind, 'a name')!r}")
        self._validate()

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
                raise ArgumentError(
                    f"--{kind.replace('_', '-')} {spec!r}: {setting!r} is not an option here ({allowed})"
                )
            options.append((key, value))
        return cls(kind, target, function or None, tuple(options))

    def option(self, key: str, default: str | None = None) -> str | None:
        """The value of setting ``key`` (``pid``, ``mode``...), or ``default``."""
        return dict(self.options).get(key, default)

    def int_option(self, key: str, default: int) -> int:
        """A whole-number setting (validated when the Probe was parsed), or ``default``."""
        value = self.option(key)
        return default if value is None else int(value)

    @property
    def function_name(self) -> str:
        """The function to attach, once the program has filled it in."""
        if self.function is None:
            raise ArgumentError(f"{self.kind} {self.target}: no function was named or found to attach")
        return self.function

    def with_function(self, function: str) -> Probe:
        return replace(self, function=function)

    def with_option(self, key: str, value: str) -> Probe:
        return replace(self, options=(*((k, v) for k, v in self.options if k != key), (key, value)))

    @property
    def program_type(self) -> int:
        """The BPF_PROG_TYPE_* number a function attached to this hook is loaded as."""
        if self.kind == "cgroup":
            return PROG_TYPES[CGROUP_HOOKS[self._cgroup_type()][0]]
        return PROG_TYPES[_PROGRAM_TYPES[self.kind]]

    @property
    def attach_type(self) -> int | None:
        """The kernel's BPF_* attach type of this hook, for hooks attached through a link or map.

        None where the attach type comes from the program (a libbpf program's
        SEC()) or the hook is not attached by attach type (tracepoints, kprobes).
        """
        if self.kind == "cgroup":
            cgroup_type = self.option("type")
            return None if cgroup_type is None else ATTACH_TYPES[CGROUP_HOOKS[cgroup_type][1]]
        if self.kind == "sk_skb":
            return ATTACH_TYPES[SK_SKB_HOOKS[self.option("type") or "verdict"]]
        return ATTACH_TYPES.get({"sk_msg": "sk_msg_verdict", "sk_lookup": "sk_lookup", "xdp": "xdp"}.get(self.kind, ""))

    def _cgroup_type(self) -> str:
        cgroup_type = self.option("type")
        if cgroup_type is None:
            raise ArgumentError(
                f"--cgroup {self.target}: say which hook of the cgroup, for example {self.target}=FUNCTION,type=connect4",
                hint=f"types: {', '.join(CGROUP_HOOKS)}",
            )
        return cgroup_type

    def _validate(self) -> None:
        for key, _value in self.options:
            if key not in PROBE_KINDS.get(self.kind, ()):
                allowed = ", ".join(f"{k}=..." for k in PROBE_KINDS.get(self.kind, ())) or "no options"
                raise ArgumentError(f"{self.kind} {self.target}: {key!r} is not an option here ({allowed})")
        if self.kind == "perf_event":
            perf_event_type(self.target)
            if self.option("freq") and self.option("period"):
                raise ArgumentError("--perf-event takes freq= or period=, not both")
        if self.kind == "xdp" and self.option("mode", "auto") not in XDP_FLAGS:
            raise ArgumentError(f"XDP mode {self.option('mode')!r}: expected one of {', '.join(XDP_FLAGS)}")
        if self.kind in ("uprobe", "uretprobe") and ":" not in self.target:
            raise ArgumentError(f"--{self.kind} {self.target!r}: write BINARY:SYMBOL, for example c:malloc")
        if self.kind == "cgroup" and self.option("type", "ingress") not in CGROUP_HOOKS:
            raise ArgumentError(
                f"--cgroup type={self.option('type')!r} is not a cgroup hook", hint=f"types: {', '.join(CGROUP_HOOKS)}"
            )
        if self.kind == "sk_skb" and self.option("type", "verdict") not in SK_SKB_HOOKS:
            raise ArgumentError(f"--sk-skb type={self.option('type')!r}: expected {' or '.join(SK_SKB_HOOKS)}")
        if self.kind == "tracepoint" and ":" not in self.target:
            raise ArgumentError(f"--tracepoint {self.target!r}: write CATEGORY:EVENT, for example sched:sched_switch")
        for key in ("pid", "cpu", "freq", "period"):
            value = self.option(key)
            if value is not None and not value.lstrip("-").isdigit():
                raise ArgumentError(f"{key}={value!r} must be a whole number")
        for key in ("freq", "period"):
            if self.int_option(key, 1) < 1:
                raise ArgumentError(f"{key}={self.option(key)} must be at least 1: it says how often to sample")

    def __str__(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in self.options)
        return f"{self.kind} {self.target}{extra} -> {self.function}"


def require_target(probe: Probe) -> None:
    """Raise an :class:`AttachError` that says what to do when ``probe``'s hook does not exist here.

    Every engine asks this before attaching: the kernel's own answer to a
    missing hook (ENOENT, EINVAL) does not say which part was wrong.
    """
    if probe.kind in ("kprobe", "kretprobe") and not has_kprobes():
        raise AttachError(
            f"this kernel has no kprobes (CONFIG_KPROBES is off), so {probe.target} cannot be probed.",
            hint="Use a tracepoint (`%bpf probes` lists them) or a raw tracepoint instead.",
        )
    if probe.kind == "tracepoint":
        category, _, event = probe.target.partition(":")
        if not has_tracepoint(category, event):
            problem = f"there is no tracepoint {probe.target} on this kernel"
            listed = f"{category}:*" if has_tracepoint(category, "") else "*"
            raise AttachError(
                did_you_mean(problem, probe.target, similar_tracepoints(probe.target), show=str),
                hint=f"`%bpf probes {listed}` lists the tracepoints"
                + (f" of {category!r}." if listed != "*" else f" (there is no category {category!r})."),
            )
    if probe.kind == "raw_tracepoint" and not has_raw_tracepoint(probe.target):
        events = (name.partition(":")[2] for name in similar_tracepoints(probe.target))
        raise AttachError(
            did_you_mean(f"there is no raw tracepoint {probe.target} on this kernel", probe.target, events, show=str),
            hint="Raw tracepoints are named like tracepoints without their category: `%bpf probes` lists them.",
        )
    if probe.kind in ("uprobe", "uretprobe"):
        binary = probe.target.rpartition(":")[0]
        try:
            resolve_binary(binary)
        except ArgumentError as exc:
            raise AttachError(f"cannot put a {probe.kind} on {probe.target}: {exc.message}", hint=exc.hint) from None
    pid = probe.int_option("pid", -1)
    if pid >= 0 and not os.path.exists(f"/proc/{pid}"):
        raise AttachError(f"{probe.kind} {probe.target}: there is no process with pid {pid}")
    cpu = probe.int_option("cpu", -1)
    if cpu >= 0 and cpu not in online_cpus():
        raise AttachError(f"{probe.kind} {probe.target}: there is no CPU {cpu} (online: {_spans(online_cpus())})")
    if probe.kind in ("xdp", "socket_filter"):
        try:
            socket.if_nametoindex(probe.target)
        except OSError:
            raise AttachError(
                f"there is no network device named {probe.target!r} in this network namespace.",
                hint="`ip link` lists the devices.",
            ) from None
