"""What a Probe means: its kind's options, the program type it loads as and the attach type it uses."""

from __future__ import annotations

import pytest

from bpfnb import ArgumentError, Probe
from bpfnb.engines.hooks import CGROUP_HOOKS
from bpfnb.kernel.constants import ATTACH_TYPES, PROG_TYPES


@pytest.mark.parametrize(
    ("hook", "program", "attach"),
    [
        ("connect4", "cgroup_sock_addr", "cgroup_inet4_connect"),
        ("egress", "cgroup_skb", "cgroup_inet_egress"),
        ("sock_create", "cgroup_sock", "cgroup_inet_sock_create"),
        ("getsockopt", "cgroup_sockopt", "cgroup_getsockopt"),
        ("sysctl", "cgroup_sysctl", "cgroup_sysctl"),
    ],
)
def test_a_cgroup_hook_names_its_program_and_attach_type(hook, program, attach):
    probe = Probe.parse("cgroup", f"/sys/fs/cgroup/demo=fn,type={hook}")
    assert (probe.target, probe.function) == ("/sys/fs/cgroup/demo", "fn")
    assert probe.program_type == PROG_TYPES[program]
    assert probe.attach_type == ATTACH_TYPES[attach]


def test_every_cgroup_hook_is_a_kernel_attach_type():
    for program, attach in CGROUP_HOOKS.values():
        assert program in PROG_TYPES and attach in ATTACH_TYPES


def test_a_cgroup_probe_without_a_type_leaves_it_to_the_program():
    probe = Probe.parse("cgroup", "demo")
    assert probe.function is None and probe.attach_type is None
    with pytest.raises(ArgumentError, match="type=connect4"):
        probe.program_type  # noqa: B018  (a BCC function cannot be loaded without it)


def test_sockmap_and_netns_hooks():
    assert Probe.parse("sk_skb", "socks=fn,type=parser").attach_type == ATTACH_TYPES["sk_skb_stream_parser"]
    assert Probe.parse("sk_skb", "socks=fn").attach_type == ATTACH_TYPES["sk_skb_stream_verdict"]
    assert Probe.parse("sk_msg", "socks=fn").attach_type == ATTACH_TYPES["sk_msg_verdict"]
    lookup = Probe.parse("sk_lookup", "demo=fn")
    assert (lookup.program_type, lookup.attach_type) == (PROG_TYPES["sk_lookup"], ATTACH_TYPES["sk_lookup"])


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("cgroup", "demo=fn,type=connect5", "'connect5' is not a cgroup hook"),
        ("sk_skb", "socks=fn,type=both", "expected verdict or parser"),
        ("sk_msg", "socks=fn,type=verdict", "'type=verdict' is not an option here"),
    ],
)
def test_wrong_hook_options_are_argument_errors(kind, spec, message):
    with pytest.raises(ArgumentError, match=message):
        Probe.parse(kind, spec)


def test_options_are_checked_however_a_probe_is_made():
    with pytest.raises(ArgumentError, match="'mode' is not an option here"):
        Probe("cgroup", "demo", "fn", (("mode", "skb"),))
