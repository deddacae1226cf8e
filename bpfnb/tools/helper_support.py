"""Ask the running kernel in which program types each BPF helper may be called.

For every (program type, helper) pair a three-instruction program
(``call helper; r0 = 0; exit``) is loaded and the verifier's log is read. Only
the verifier's own refusal ("program of this type cannot use helper", or
"unknown func" on older kernels) means *not supported*; any other rejection
(bad arguments, unreleased reference, wrong return value) comes after the
helper was accepted. libbpf 1.1 and Debian's bpftool only know the old wording
and so report every helper as supported on newer kernels: that is why bpfnb
reads the log itself.

Verdicts are cached (:func:`bpfnb.cache.cache_root`) per kernel build and lockdown state.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..cache import atomic_write, cache_root
from ..errors import PrivilegeError
from ..kernel import libbpf as _libbpf
from ..kernel.constants import ATTACH_TYPES, BPF_F_SLEEPABLE, PROG_TYPES

__all__ = ["PROGRAM_TYPES", "KernelVerdicts", "kernel_verdicts", "helper_verdict"]

#: Program types probed, each with the expected attach type and BTF attach target it loads with.
#: Types that need an attach target or attach type get a representative one:
#: the helpers a type allows can depend on it (see the comments). Numbers: ``bpfnb.kernel.constants.PROG_TYPES``.
PROGRAM_TYPES: dict[str, tuple[int, str | None]] = {
    "socket_filter": (0, None),
    "kprobe": (0, None),
    "sched_cls": (0, None),
    "sched_act": (0, None),
    "tracepoint": (0, None),
    "xdp": (0, None),
    "perf_event": (0, None),
    "cgroup_skb": (0, None),
    "cgroup_sock": (ATTACH_TYPES["cgroup_inet_sock_create"], None),
    "lwt_in": (0, None),
    "lwt_out": (0, None),
    "lwt_xmit": (0, None),
    "sock_ops": (0, None),
    "sk_skb": (0, None),
    "cgroup_device": (0, None),
    "sk_msg": (0, None),
    "raw_tracepoint": (0, None),
    "cgroup_sock_addr": (ATTACH_TYPES["cgroup_inet4_connect"], None),
    "lwt_seg6local": (0, None),
    "lirc_mode2": (ATTACH_TYPES["lirc_mode2"], None),
    "sk_reuseport": (0, None),
    "flow_dissector": (0, None),
    "cgroup_sysctl": (0, None),
    "cgroup_sockopt": (ATTACH_TYPES["cgroup_getsockopt"], None),
    "tracing": (ATTACH_TYPES["trace_raw_tp"], "sched_switch"),
    "lsm": (ATTACH_TYPES["lsm_mac"], "file_open"),
    "sk_lookup": (ATTACH_TYPES["sk_lookup"], None),
    "syscall": (0, None),
    "netfilter": (ATTACH_TYPES["netfilter"], None),
}

_REFUSED = re.compile(r"program of this type cannot use helper|unknown func|invalid func")
_CONDITIONAL = re.compile(r"helper call might sleep[^\n]*|helper call is not allowed in probe|[^\n]*not allowed[^\n]*")
_CALL_NAME = re.compile(r"(bpf_\w+)#(\d+)")
_SCHEMA = 3
_SLEEPABLE_ONLY = {"syscall"}


def _program(helper_id: int) -> bytes:
    call = struct.pack("<BBhi", 0x85, 0, 0, helper_id)
    r0_zero = struct.pack("<BBhi", 0xB7, 0, 0, 0)
    exit_ = struct.pack("<BBhi", 0x95, 0, 0, 0)
    return call + r0_zero + exit_


def helper_verdict(prog_type: str, helper_id: int) -> tuple[str, str]:
    """Load one program of ``prog_type`` that calls ``helper_id``; classify the verifier's answer.

    Returns
    -------
    (verdict, log)
        ``verdict`` is ``"accepted"``, ``"refused"`` or ``"conditional"`` (the
        type has the helper but a plain program may not call it: only sleepable
        programs, or only some attach points, as the log says); ``log`` is the
        verifier's log.
    """
    verdict, _err, log = _load(prog_type, helper_id)
    return verdict, log


def _load(prog_type: str, helper_id: int) -> tuple[str, int, str]:
    number, (attach_type, target) = PROG_TYPES[prog_type], PROGRAM_TYPES[prog_type]
    btf_id = _attach_btf_id(target, attach_type) if target else 0
    fd, err, log = _libbpf.prog_load(
        number,
        _program(helper_id),
        expected_attach_type=attach_type,
        attach_btf_id=btf_id,
        prog_flags=BPF_F_SLEEPABLE if prog_type in _SLEEPABLE_ONLY else 0,
    )
    if fd >= 0:
        os.close(fd)
        return "accepted", 0, log
    if _REFUSED.search(log):
        return "refused", err, log
    if _CONDITIONAL.search(log):
        return "conditional", err, log
    return "accepted", err, log


@functools.lru_cache(maxsize=None)
def _attach_btf_id(target: str, attach_type: int) -> int:
    return _libbpf.vmlinux_btf_id(target, attach_type)


@dataclass
class KernelVerdicts:
    """What the running kernel said about every helper in every program type it can load."""

    kernel: str
    #: helper id -> program types that accept it in a plain program.
    supported: dict[int, list[str]] = field(default_factory=dict)
    #: helper id -> {program type: the verifier's condition}.
    conditions: dict[int, dict[str, str]] = field(default_factory=dict)
    #: program type -> "" if probed, else why it could not be probed here.
    program_types: dict[str, str] = field(default_factory=dict)
    #: helpers the kernel has beyond the header: id -> name (from the verifier log).
    extra_names: dict[int, str] = field(default_factory=dict)
    #: what could not be checked, and why.
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        usable = sum(1 for reason in self.program_types.values() if not reason)
        return f"<KernelVerdicts {self.kernel}: {len(self.supported)} helpers, {usable} program types>"


def _kernel_key() -> str:
    # Lockdown can be raised while the machine runs, so the boot id alone is not enough.
    from ..kernel.environment import lockdown

    uname = os.uname()
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = "unknown"
    return f"{uname.release} {uname.version} boot={boot} lockdown={lockdown().mode}"


def _cache_path(kernel: str) -> Path:
    digest = hashlib.sha256(f"{_SCHEMA} {kernel}".encode()).hexdigest()[:16]
    return cache_root() / f"helpers-{digest}.json"


def _type_problem(prog_type: str) -> str:
    """"" if the verifier reaches the helper check for ``prog_type``, else why not."""
    try:
        verdict, err, log = _load(prog_type, 0)
    except OSError as exc:
        return f"no attach target: {exc.strerror}"
    if verdict == "refused":
        return ""
    if log.strip():
        return log.strip().splitlines()[-1]
    return f"the kernel refuses to load this program type ({os.strerror(err)})"


def _kernel_helper_count(header_max: int) -> tuple[int, dict[int, str]]:
    """Highest helper id the kernel knows and the names of those past ``header_max``."""
    names: dict[int, str] = {}
    helper_id = header_max + 1
    while True:
        _verdict, log = helper_verdict("socket_filter", helper_id)
        if "invalid func" in log:
            return helper_id - 1, names
        match = _CALL_NAME.search(log)
        names[helper_id] = match.group(1) if match else f"bpf_func_{helper_id}"
        helper_id += 1


# Maps whose values hold a lock or a timer are refused in some program types
# by a verifier rule outside the helper check ("tracing progs cannot use
# bpf_spin_lock yet"): such a helper is there but unusable. BCC builds the
# BTF-described maps this takes; each function only looks its map up.
_MAP_FIELD_SOURCE = """
struct locked_t { struct bpf_spin_lock lock; u64 n; };
BPF_ARRAY(locked, struct locked_t, 1);
struct timed_t { struct bpf_timer timer; };
BPF_ARRAY(timed, struct timed_t, 1);
int use_locked(void *ctx) { int k = 0; return locked.lookup(&k) != 0; }
int use_timed(void *ctx) { int k = 0; return timed.lookup(&k) != 0; }
"""
_MAP_FIELD_HELPERS = {
    "use_locked": (93, 94),  # bpf_spin_lock, bpf_spin_unlock
    "use_timed": (169, 170, 171, 172),  # bpf_timer_init, _set_callback, _start, _cancel
}
_MAP_FIELD_REFUSAL = re.compile(r"\w[\w ]*cannot use bpf_(spin_lock|timer)[^\n]*")
# Program types BCC can load without an attach type or target.
_BCC_LOADABLE = ("socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp", "perf_event", "cgroup_skb", "raw_tracepoint", "sk_skb", "lwt_in")


def _map_field_rules(verdicts: KernelVerdicts) -> None:
    """Move helpers whose map the verifier refuses in a type from ``supported`` to ``conditions``."""
    from ..engines.bcc.compiler import compile_source, load_function
    from ..errors import BpfnbError

    try:
        bpf, _log = compile_source(_MAP_FIELD_SOURCE)
    except BpfnbError as exc:
        verdicts.notes.append(f"lock and timer maps not checked: {exc.message}")
        return
    try:
        for function, helper_ids in _MAP_FIELD_HELPERS.items():
            for prog_type in _BCC_LOADABLE:
                try:
                    load_function(bpf, function, PROG_TYPES[prog_type], source=_MAP_FIELD_SOURCE, first_line=1)
                except BpfnbError as exc:
                    refusal = _MAP_FIELD_REFUSAL.search(f"{exc.message}\n{exc.details}")
                    if refusal:
                        for helper_id in helper_ids:
                            _restrict(verdicts, helper_id, prog_type, refusal.group(0).strip())
                else:
                    os.close(bpf.funcs.pop(function.encode()).fd)
    finally:
        bpf.cleanup()


def _restrict(verdicts: KernelVerdicts, helper_id: int, prog_type: str, reason: str) -> None:
    if prog_type in verdicts.supported.get(helper_id, []):
        verdicts.supported[helper_id].remove(prog_type)
        verdicts.conditions.setdefault(helper_id, {})[prog_type] = reason


def _probe_all(kernel: str, header_max: int) -> KernelVerdicts:
    verdicts = KernelVerdicts(kernel=kernel)
    for prog_type in PROGRAM_TYPES:
        verdicts.program_types[prog_type] = _type_problem(prog_type)
    max_id, verdicts.extra_names = _kernel_helper_count(header_max)
    usable = [t for t, problem in verdicts.program_types.items() if not problem]
    for helper_id in range(1, max_id + 1):
        for prog_type in usable:
            verdict, log = helper_verdict(prog_type, helper_id)
            if verdict == "accepted":
                verdicts.supported.setdefault(helper_id, []).append(prog_type)
            elif verdict == "conditional":
                reason = _CONDITIONAL.search(log)
                verdicts.conditions.setdefault(helper_id, {})[prog_type] = reason.group(0).strip() if reason else ""
    _map_field_rules(verdicts)
    return verdicts


def kernel_verdicts(header_max: int, *, refresh: bool = False) -> KernelVerdicts:
    """The kernel's verdicts on every helper, from the cache or by loading probe programs.

    Parameters
    ----------
    header_max : int
        The highest helper id the header knows; the kernel is asked about ids
        beyond it too, so a newer kernel's helpers are listed by name.
    refresh : bool
        Probe again even if a cached answer exists.
    """
    kernel = _kernel_key()
    path = _cache_path(kernel)
    if not refresh and path.exists():
        data = json.loads(path.read_text())
        return KernelVerdicts(
            kernel=data["kernel"],
            supported={int(k): v for k, v in data["supported"].items()},
            conditions={int(k): v for k, v in data["conditions"].items()},
            program_types=data["program_types"],
            extra_names={int(k): v for k, v in data["extra_names"].items()},
            notes=data["notes"],
        )
    if _type_problem("socket_filter"):
        raise PrivilegeError(
            "the kernel refused a minimal socket filter, so it cannot be asked about helpers",
            details=_type_problem("socket_filter"),
        )
    verdicts = _probe_all(kernel, header_max)
    atomic_write(path, json.dumps(verdicts.__dict__, indent=1).encode())
    return verdicts
