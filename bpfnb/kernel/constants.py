"""The kernel's numbers for BPF and perf, written once: program, map and attach types, flags.

Every table here is an enum of ``linux/bpf.h`` or ``linux/perf_event.h``,
spelled as bpfnb's options and displays spell it (lower case, without the
``BPF_PROG_TYPE_``/``BPF_MAP_TYPE_``/``BPF_`` prefix). Newer kernels append to
these enums and never renumber, so names past the distribution's header (up
to Linux 6.18) are listed too.
"""

from __future__ import annotations

__all__ = [
    "ATTACH_TYPES",
    "BPF_ANY",
    "BPF_EXIST",
    "BPF_F_MMAPABLE",
    "BPF_F_SLEEPABLE",
    "BPF_NOEXIST",
    "MAP_TYPES",
    "MAP_TYPE_IDS",
    "PERF_ATTR_DISABLED",
    "PERF_ATTR_FREQ",
    "PERF_ATTR_WATERMARK",
    "PERF_COUNT_SW_BPF_OUTPUT",
    "PERF_EVENTS",
    "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_SET_BPF",
    "PERF_FLAG_FD_CLOEXEC",
    "PERF_RECORD_LOST",
    "PERF_RECORD_SAMPLE",
    "PERF_SAMPLE_RAW",
    "PERF_TYPE_HARDWARE",
    "PERF_TYPE_SOFTWARE",
    "PERF_TYPE_TRACEPOINT",
    "PROG_TYPES",
    "TC_ACTIONS",
    "XDP_ACTIONS",
    "XDP_FLAGS",
    "XDP_PASS",
    "map_type_name",
]

#: BPF_PROG_TYPE_* numbers by name (enum bpf_prog_type).
PROG_TYPES: dict[str, int] = {
    "socket_filter": 1, "kprobe": 2, "sched_cls": 3, "sched_act": 4, "tracepoint": 5, "xdp": 6,
    "perf_event": 7, "cgroup_skb": 8, "cgroup_sock": 9, "lwt_in": 10, "lwt_out": 11, "lwt_xmit": 12,
    "sock_ops": 13, "sk_skb": 14, "cgroup_device": 15, "sk_msg": 16, "raw_tracepoint": 17,
    "cgroup_sock_addr": 18, "lwt_seg6local": 19, "lirc_mode2": 20, "sk_reuseport": 21,
    "flow_dissector": 22, "cgroup_sysctl": 23, "raw_tracepoint_writable": 24, "cgroup_sockopt": 25,
    "tracing": 26, "struct_ops": 27, "ext": 28, "lsm": 29, "sk_lookup": 30, "syscall": 31, "netfilter": 32,
}  # fmt: skip

#: BPF_MAP_TYPE_* names by number (enum bpf_map_type).
MAP_TYPES: dict[int, str] = dict(enumerate(
    "unspec hash array prog_array perf_event_array percpu_hash percpu_array stack_trace "
    "cgroup_array lru_hash lru_percpu_hash lpm_trie array_of_maps hash_of_maps devmap "
    "sockmap cpumap xskmap sockhash cgroup_storage reuseport_sockarray "
    "percpu_cgroup_storage queue stack sk_storage devmap_hash struct_ops ringbuf "
    "inode_storage task_storage bloom_filter user_ringbuf cgrp_storage arena".split()
))  # fmt: skip

#: BPF_MAP_TYPE_* numbers by name.
MAP_TYPE_IDS: dict[str, int] = {name: number for number, name in MAP_TYPES.items()}

#: BPF_* attach type numbers by name (enum bpf_attach_type).
ATTACH_TYPES: dict[str, int] = {name: number for number, name in enumerate(
    "cgroup_inet_ingress cgroup_inet_egress cgroup_inet_sock_create cgroup_sock_ops "
    "sk_skb_stream_parser sk_skb_stream_verdict cgroup_device sk_msg_verdict "
    "cgroup_inet4_bind cgroup_inet6_bind cgroup_inet4_connect cgroup_inet6_connect "
    "cgroup_inet4_post_bind cgroup_inet6_post_bind cgroup_udp4_sendmsg cgroup_udp6_sendmsg "
    "lirc_mode2 flow_dissector cgroup_sysctl cgroup_udp4_recvmsg cgroup_udp6_recvmsg "
    "cgroup_getsockopt cgroup_setsockopt trace_raw_tp trace_fentry trace_fexit modify_return "
    "lsm_mac trace_iter cgroup_inet4_getpeername cgroup_inet6_getpeername "
    "cgroup_inet4_getsockname cgroup_inet6_getsockname xdp_devmap cgroup_inet_sock_release "
    "xdp_cpumap sk_lookup xdp sk_skb_verdict sk_reuseport_select sk_reuseport_select_or_migrate "
    "perf_event trace_kprobe_multi lsm_cgroup struct_ops netfilter tcx_ingress tcx_egress "
    "trace_uprobe_multi cgroup_unix_connect cgroup_unix_sendmsg cgroup_unix_recvmsg "
    "cgroup_unix_getpeername cgroup_unix_getsockname netkit_primary netkit_peer "
    "trace_kprobe_session trace_uprobe_session".split()
)}  # fmt: skip

#: Map update flags.
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2
#: A map created with this flag can be mapped into a process and read without syscalls.
BPF_F_MMAPABLE = 1 << 10
#: A program loaded with this flag may call helpers that sleep.
BPF_F_SLEEPABLE = 1 << 4

#: XDP attach modes (XDP_FLAGS_* of linux/if_link.h) by the names ``mode=`` accepts.
XDP_FLAGS: dict[str, int] = {"auto": 0, "skb": 2, "generic": 2, "drv": 4, "native": 4, "hw": 8, "offload": 8}
#: XDP return codes (enum xdp_action).
XDP_ACTIONS: dict[int, str] = {0: "XDP_ABORTED", 1: "XDP_DROP", 2: "XDP_PASS", 3: "XDP_TX", 4: "XDP_REDIRECT"}
XDP_PASS = 2
#: tc return codes (TC_ACT_* of linux/pkt_cls.h).
TC_ACTIONS: dict[int, str] = {
    -1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT", 3: "TC_ACT_PIPE",
    4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT", 7: "TC_ACT_REDIRECT", 8: "TC_ACT_TRAP",
}  # fmt: skip

# -- perf events (linux/perf_event.h) ---------------------------------------------

PERF_TYPE_HARDWARE, PERF_TYPE_SOFTWARE, PERF_TYPE_TRACEPOINT = 0, 1, 2
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_SAMPLE_RAW = 1 << 10
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_RECORD_LOST, PERF_RECORD_SAMPLE = 2, 9
#: Bits of ``perf_event_attr.flags``.
PERF_ATTR_DISABLED, PERF_ATTR_FREQ, PERF_ATTR_WATERMARK = 1 << 0, 1 << 10, 1 << 14
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_SET_BPF = 0x40042408  # _IOW('$', 8, __u32)

#: Perf events that ``--perf-event FAMILY:NAME`` accepts: (perf type, {name: config}).
PERF_EVENTS: dict[str, tuple[int, dict[str, int]]] = {
    "software": (PERF_TYPE_SOFTWARE, {
        "cpu-clock": 0, "task-clock": 1, "page-faults": 2, "context-switches": 3,
        "cpu-migrations": 4, "minor-faults": 5, "major-faults": 6,
    }),
    "hardware": (PERF_TYPE_HARDWARE, {
        "cpu-cycles": 0, "instructions": 1, "cache-references": 2, "cache-misses": 3,
        "branch-instructions": 4, "branch-misses": 5, "bus-cycles": 6, "ref-cpu-cycles": 9,
    }),
}  # fmt: skip


def map_type_name(type_id: int) -> str:
    """The name of a BPF_MAP_TYPE_* number, or ``type N`` for one newer than this table."""
    return MAP_TYPES.get(type_id, f"type {type_id}")
