"""The packet lab on the real kernel: XDP, tc and socket-filter programs run with BPF_PROG_TEST_RUN."""

from __future__ import annotations

import pytest

import bpfnb
from bpfnb.packets.builder import tcp, udp
from bpfnb.packets.testrun import TestRunResult, test_run

XDP_SOURCE = r"""
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>

int drop_dns(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct udphdr *udp = (void *)ip + sizeof(*ip);
    if ((void *)(udp + 1) > end)
        return XDP_PASS;
    if (eth->h_proto == htons(ETH_P_IP) && ip->protocol == IPPROTO_UDP && udp->dest == htons(53))
        return XDP_DROP;
    return XDP_PASS;
}
"""

TC_SOURCE = r"""
#include <uapi/linux/if_ether.h>
#include <uapi/linux/in.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/pkt_cls.h>

#define IP_OFF sizeof(struct ethhdr)
#define UDP_OFF (IP_OFF + sizeof(struct iphdr))

/* Send DNS to 10.0.0.99:5353 instead, fixing both checksums. */
int rewrite_dns(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + IP_OFF;
    struct udphdr *udp = data + UDP_OFF;
    if ((void *)(udp + 1) > end)
        return TC_ACT_OK;
    if (eth->h_proto != htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP || udp->dest != htons(53))
        return TC_ACT_OK;
    __be32 old_ip = ip->daddr, new_ip = htonl(0x0a000063);
    __be16 old_port = udp->dest, new_port = htons(5353);
    bpf_l4_csum_replace(skb, UDP_OFF + offsetof(struct udphdr, check), old_ip, new_ip, BPF_F_PSEUDO_HDR | sizeof(new_ip));
    bpf_l4_csum_replace(skb, UDP_OFF + offsetof(struct udphdr, check), old_port, new_port, sizeof(new_port));
    bpf_l3_csum_replace(skb, IP_OFF + offsetof(struct iphdr, check), old_ip, new_ip, sizeof(new_ip));
    bpf_skb_store_bytes(skb, IP_OFF + offsetof(struct iphdr, daddr), &new_ip, sizeof(new_ip), 0);
    bpf_skb_store_bytes(skb, UDP_OFF + offsetof(struct udphdr, dest), &new_port, sizeof(new_port), 0);
    return TC_ACT_OK;
}

int shoot_tcp(struct __sk_buff *skb) {
    void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
    struct iphdr *ip = data + IP_OFF;
    if ((void *)(ip + 1) > end)
        return TC_ACT_UNSPEC;
    return ip->protocol == IPPROTO_TCP ? TC_ACT_SHOT : TC_ACT_UNSPEC;
}
"""

# A socket filter sees the packet from the IP header on; it returns how many bytes to keep.
FILTER_SOURCE = r"""
#include <uapi/linux/in.h>

int udp_headers_only(struct __sk_buff *skb) {
    if (load_byte(skb, 9) != IPPROTO_UDP)
        return 0;
    return 20 + 8;
}
"""


def internet_sum(data: bytes) -> int:
    """RFC 1071 one's complement sum, written here independently of bpfnb."""
    data += b"\0" * (len(data) % 2)
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total > 0xFFFF:
        total = (total >> 16) + (total & 0xFFFF)
    return total


@pytest.fixture
def xdp(no_leaks):
    with bpfnb.Program(XDP_SOURCE, attach=False) as prog:
        yield prog


@pytest.fixture
def tc(no_leaks):
    with bpfnb.Program(TC_SOURCE, attach=False) as prog:
        yield prog


def test_xdp_drops_dns_and_passes_the_rest(xdp) -> None:
    dns = udp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=53, payload=b"query")
    r = xdp.test_run("drop_dns", dns)
    assert isinstance(r, TestRunResult)
    assert (r.prog_type, r.retval, r.action) == ("xdp", 1, "XDP_DROP")
    for other in (
        udp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=54),
        tcp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=53),
        udp(src="2001:db8::1", dst="2001:db8::2", sport=4000, dport=53),
    ):
        r = test_run(xdp, "drop_dns", other, repeat=100)
        assert (r.retval, r.action, r.repeat) == (2, "XDP_PASS", 100)
        assert r.packet_out == other and r.diff == []


def test_tc_rewrites_destination_and_fixes_checksums(tc) -> None:
    dns = udp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=53, payload=b"query")
    r = tc.test_run("rewrite_dns", dns)
    assert (r.prog_type, r.retval, r.action) == ("sched_cls", 0, "TC_ACT_OK")
    out = r.packet_out
    assert len(out) == len(dns)
    assert out[30:34] == bytes([10, 0, 0, 99]) and out[36:38] == (5353).to_bytes(2, "big")
    # The IPv4 header and the UDP datagram (with its pseudo-header) sum to all ones.
    assert internet_sum(out[14:34]) == 0xFFFF
    udp_part = out[34:]
    pseudo = out[26:34] + bytes([0, 17]) + len(udp_part).to_bytes(2, "big")
    assert internet_sum(pseudo + udp_part) == 0xFFFF
    # Changed: destination address, port and both checksums; nothing else.
    assert {offset for offset, _, _ in r.diff} <= {24, 25, 30, 31, 32, 33, 36, 37, 40, 41}
    assert {33, 37} <= r.changed
    assert "WRONG" not in r._repr_html_() and "right" in r._repr_html_()
    assert "[63]" in repr(r)  # 99, highlighted in the text hex dump


def test_tc_return_codes_are_signed(tc) -> None:
    r = tc.test_run("shoot_tcp", tcp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2))
    assert (r.retval, r.action) == (2, "TC_ACT_SHOT")
    r = tc.test_run("shoot_tcp", udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2))
    assert (r.retval, r.action) == (-1, "TC_ACT_UNSPEC")


def test_socket_filter_returns_the_length_to_keep(no_leaks) -> None:
    with bpfnb.Program(FILTER_SOURCE, attach=False) as prog:
        r = prog.test_run("udp_headers_only", udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2, payload=b"x" * 100), prog_type="socket_filter")
        assert (r.prog_type, r.retval, r.action) == ("socket_filter", 28, "keep 28 bytes")
        r = prog.test_run("udp_headers_only", tcp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2), prog_type="socket_filter")
        assert (r.retval, r.action) == (0, "drop")
        assert "from its IP header on" in r._repr_html_()


def test_bad_requests(xdp) -> None:
    with pytest.raises(ValueError, match="Ethernet header"):
        xdp.test_run("drop_dns", b"\0" * 8)
    with pytest.raises(ValueError, match="not 'kprobe'"):
        xdp.test_run("drop_dns", udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2), prog_type="kprobe")
    # An XDP function loaded as a tc program: the verifier refuses the xdp_md access.
    with bpfnb.Program(XDP_SOURCE, attach=False) as prog, pytest.raises(bpfnb.LoadError, match="drop_dns"):
        prog.test_run("drop_dns", udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=2), prog_type="tc")
