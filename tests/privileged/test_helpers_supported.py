"""The catalog's ``supported`` column against real programs compiled with BCC and loaded."""

from __future__ import annotations

import os

import pytest

from bpfnb.tools.helper_support import helper_verdict, kernel_verdicts
from bpfnb.tools.helpers import helpers

bcc = pytest.importorskip("bcc")

# One function per helper (use_<helper>); each is loaded as several program types.
SOURCE = r"""
#include <uapi/linux/ip.h>
#include <uapi/linux/tcp.h>
int use_skb_load_bytes(struct __sk_buff *skb) { char b[4] = {}; bpf_skb_load_bytes(skb, 0, b, 4); return b[0]; }
int use_get_current_pid_tgid(void *ctx) { return bpf_get_current_pid_tgid() & 1; }
int use_ktime_get_ns(void *ctx) { return bpf_ktime_get_ns() & 1; }
int use_probe_write_user(void *ctx) { int x = 0; bpf_probe_write_user((void *)0x1000, &x, sizeof(x)); return 0; }
BPF_STACK_TRACE(stacks, 16);
int use_get_stackid(void *ctx) { return stacks.get_stackid(ctx, 0) & 1; }
int use_tcp_raw_gen_syncookie_ipv4(struct xdp_md *ctx) {
    struct iphdr ip = {}; struct tcphdr th = {};
    return bpf_tcp_raw_gen_syncookie_ipv4(&ip, &th, sizeof(th)) & 1;
}
struct locked_t { struct bpf_spin_lock lock; u64 n; };
BPF_ARRAY(locked, struct locked_t, 1);
int use_spin_lock(void *ctx) {
    int zero = 0;
    struct locked_t *v = locked.lookup(&zero);
    if (v) { bpf_spin_lock(&v->lock); v->n++; bpf_spin_unlock(&v->lock); }
    return 0;
}
int use_xdp_adjust_head(struct xdp_md *ctx) { return bpf_xdp_adjust_head(ctx, 0) ? 1 : 2; }
int use_sysctl_get_name(struct bpf_sysctl *ctx) { char b[8]; bpf_sysctl_get_name(ctx, b, sizeof(b), 0); return 1; }
"""

TYPES = {"sched_cls": "SCHED_CLS", "tracepoint": "TRACEPOINT", "kprobe": "KPROBE", "xdp": "XDP", "socket_filter": "SOCKET_FILTER"}

CASES = [
    ("skb_load_bytes", "sched_cls", True),
    ("skb_load_bytes", "socket_filter", True),
    ("skb_load_bytes", "tracepoint", False),
    ("skb_load_bytes", "xdp", False),
    ("get_current_pid_tgid", "tracepoint", True),
    ("get_current_pid_tgid", "kprobe", True),
    ("ktime_get_ns", "xdp", True),
    ("get_stackid", "tracepoint", True),
    ("get_stackid", "xdp", False),
    ("tcp_raw_gen_syncookie_ipv4", "xdp", True),
    ("tcp_raw_gen_syncookie_ipv4", "tracepoint", False),
    ("xdp_adjust_head", "xdp", True),
    ("xdp_adjust_head", "sched_cls", False),
    ("sysctl_get_name", "tracepoint", False),
    # The helper is there, but the verifier refuses lock-holding maps in tracing programs.
    ("spin_lock", "xdp", True),
    ("spin_lock", "sched_cls", True),
    ("spin_lock", "tracepoint", False),
    ("spin_lock", "kprobe", False),
    # Lockdown (integrity) on this kernel takes bpf_probe_write_user away from tracing programs.
    ("probe_write_user", "kprobe", False),
    ("probe_write_user", "tracepoint", False),
]


@pytest.fixture(scope="module")
def compiled():
    b = bcc.BPF(text=SOURCE.encode())
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def catalog():
    return helpers()


def real_load(b, function: str, prog_type: str, capfd) -> tuple[bool, str]:
    try:
        fn = b.load_func(function.encode(), getattr(bcc.BPF, TYPES[prog_type]))
    except Exception:  # BCC raises a bare Exception; the verifier log went to stderr
        return False, capfd.readouterr().err
    # BCC caches a loaded function by name whatever its type: drop it to load it as another type.
    del b.funcs[function.encode()]
    os.close(fn.fd)
    return True, ""


@pytest.mark.parametrize(("helper", "prog_type", "expected"), CASES)
def test_catalog_agrees_with_a_real_load(compiled, catalog, capfd, helper, prog_type, expected) -> None:
    loaded, log = real_load(compiled, f"use_{helper}", prog_type, capfd)
    assert loaded is expected, log
    if not loaded:
        assert f"program of this type cannot use helper bpf_{helper}#" in log or "progs cannot use bpf_spin_lock" in log
    row = catalog[catalog["name"] == f"bpf_{helper}"].iloc[0]
    assert (prog_type in row["supported"]) is expected


def test_probe_reads_the_refusal_itself() -> None:
    verdict, log = helper_verdict("tracepoint", 36)
    assert verdict == "refused"
    assert "program of this type cannot use helper bpf_probe_write_user#36" in log
    # A helper the type has, called with a wrong argument: rejected, but after the helper was accepted.
    verdict, log = helper_verdict("tracepoint", 1)
    assert verdict == "accepted"
    assert "R1 type=ctx expected=map_ptr" in log


def test_types_this_kernel_cannot_load_are_named(catalog) -> None:
    problems = catalog.attrs["program_types"]
    assert problems["xdp"] == problems["tracepoint"] == ""
    # CONFIG_BPF_LIRC_MODE2 is off; BPF LSM programs need trampolines, which this kernel refuses.
    assert "Invalid argument" in problems["lirc_mode2"]
    assert "Operation not permitted" in problems["lsm"]


def test_cached_verdicts_equal_a_fresh_probe() -> None:
    cached = kernel_verdicts(209)
    fresh = kernel_verdicts(209, refresh=True)
    assert cached.supported == fresh.supported
    assert cached.conditions == fresh.conditions
    assert fresh.conditions[93]["tracepoint"] == "tracing progs cannot use bpf_spin_lock yet"
    assert fresh.extra_names.get(210, "bpf_cgrp_storage_get") == "bpf_cgrp_storage_get"
