"""The packet builder: bytes and checksums against known-good frames and an independent sum."""

from __future__ import annotations

import ipaddress

import pytest

from bpfnb.packets.builder import Packet, checksum, checksums_ok, describe, hexdump_html, hexdump_text, ipv4, tcp, udp

ZERO = "00:00:00:00:00:00"

# Frames the Linux kernel accepted (tests/privileged/test_packets.py injects them on a
# loopback device: a wrong checksum makes the kernel drop them).
KNOWN_GOOD = {
    ("udp", "10.9.9.2", "10.9.9.1"): "00000000000000000000000008004500002100004000401114b80a0909020a0909019c4014e9000de4c368656c6c6f",
    ("tcp", "10.9.9.2", "10.9.9.1"): "00000000000000000000000008004500002d00004000400614b70a0909020a0909019c4014e900000000000000005002ffff94cd000068656c6c6f",
    ("udp", "::1", "::1"): "00000000000000000000000086dd60000000000d114000000000000000000000000000000001000000000000000000000000000000019c4014e9000d0ad768656c6c6f",
    ("tcp", "::1", "::1"): "00000000000000000000000086dd600000000019064000000000000000000000000000000001000000000000000000000000000000019c4014e900000000000000005002ffffbae0000068656c6c6f",
}


def ones_complement_sum(data: bytes) -> int:
    """The RFC 1071 sum written differently from bpfnb's: one big integer folded by modulo."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    return total % 0xFFFF if total % 0xFFFF else (0xFFFF if total else 0)


def transport_sum_ok(frame: bytes) -> bool:
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == 0x0800:
        ip = frame[14:34]
        src, dst, proto, segment = ip[12:16], ip[16:20], ip[9], frame[34:]
        pseudo = src + dst + bytes([0, proto]) + len(segment).to_bytes(2, "big")
    else:
        src, dst, proto, segment = frame[22:38], frame[38:54], frame[20], frame[54:]
        pseudo = src + dst + len(segment).to_bytes(4, "big") + bytes([0, 0, 0, proto])
    return ones_complement_sum(pseudo + segment) == 0xFFFF


@pytest.mark.parametrize(("kind", "src", "dst"), list(KNOWN_GOOD))
def test_known_good_frames(kind: str, src: str, dst: str) -> None:
    build = udp if kind == "udp" else tcp
    frame = build(src=src, dst=dst, sport=40000, dport=5353, payload=b"hello", dst_mac=ZERO, src_mac=ZERO)
    assert frame.hex() == KNOWN_GOOD[(kind, src, dst)]
    assert transport_sum_ok(frame)


def test_ipv4_header_checksum_of_the_textbook_example() -> None:
    # The worked example of the IPv4 header checksum (Wikipedia, "Internet checksum").
    header = ipv4("192.168.0.1", "192.168.0.199", 17, bytes(95))[:20]
    assert header.hex() == "45000073000040004011b861c0a80001c0a800c7"
    assert checksum(header) == 0
    assert ones_complement_sum(header) == 0xFFFF


@pytest.mark.parametrize("payload", [b"", b"x", b"odd length!", bytes(range(256)) * 4])
@pytest.mark.parametrize(("src", "dst"), [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")])
def test_checksums_for_many_payloads(payload: bytes, src: str, dst: str) -> None:
    for frame in (udp(src=src, dst=dst, sport=1, dport=53, payload=payload), tcp(src=src, dst=dst, sport=1, dport=80, payload=payload, flags="PA", seq=7, ack=9)):
        assert transport_sum_ok(frame)
        assert all(checksums_ok(frame).values())
        if ipaddress.ip_address(src).version == 4:
            assert ones_complement_sum(frame[14:34]) == 0xFFFF
            assert int.from_bytes(frame[16:18], "big") == len(frame) - 14


def test_a_changed_byte_is_noticed() -> None:
    frame = bytearray(udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=53, payload=b"x"))
    frame[-1] ^= 0xFF
    assert checksums_ok(bytes(frame)) == {"IPv4": True, "UDP": False}
    frame[22] -= 1  # TTL
    assert checksums_ok(bytes(frame)) == {"IPv4": False, "UDP": False}


def test_one_line_builder_and_its_display() -> None:
    p = udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=53, payload=b"x")
    assert isinstance(p, Packet) and isinstance(p, bytes) and len(p) == 14 + 20 + 8 + 1
    assert repr(p) == "<Packet 43 bytes: Ethernet / IPv4 10.0.0.1 > 10.0.0.2 / UDP 1 > 53 / 1 byte payload>"
    html = p._repr_html_()
    assert "IPv4 checksum ok, UDP checksum ok" in html and "0020" in html
    t = tcp(src="2001:db8::1", dst="2001:db8::2", sport=5, dport=80, flags="SA")
    assert describe(t) == "Ethernet / IPv6 2001:db8::1 > 2001:db8::2 / TCP 5 > 80 [SA]"
    assert t[14 + 40 + 13] == 0x12  # SYN|ACK


def test_hexdumps_mark_changed_bytes() -> None:
    data = bytes(range(20))
    text = hexdump_text(data, changed={1, 17})
    assert text.splitlines() == [
        "0000  00 [01] 02  03  04  05  06  07  08  09  0a  0b  0c  0d  0e  0f",
        "0010  10 [11] 12  13",
    ]
    assert hexdump_html(data, changed={17}).count("background") == 1
