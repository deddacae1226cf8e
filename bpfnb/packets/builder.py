"""Build test packets in one line: Ethernet, IPv4, IPv6, UDP and TCP with correct checksums.

    >>> udp(src="10.0.0.1", dst="10.0.0.2", sport=1, dport=53, payload=b"x")
    <Packet 43 bytes: Ethernet / IPv4 10.0.0.1 > 10.0.0.2 / UDP 1 > 53 / 1 byte payload>

A small builder rather than scapy: scapy is a large package that takes about a
second to import and warns about missing optional tools at import, while the
packet lab needs five headers and their checksums. ``describe()`` reads the same
headers back, for the displays of packets and of ``test_run`` results.
"""

from __future__ import annotations

import html
import ipaddress
import struct
from dataclasses import dataclass

from ..display.html import card

__all__ = [
    "Packet",
    "checksum",
    "checksums_ok",
    "describe",
    "ethernet",
    "hexdump_html",
    "hexdump_text",
    "ipv4",
    "ipv6",
    "tcp",
    "udp",
]

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6
IPPROTO_UDP = 17
_TCP_FLAGS = "FSRPAUEC"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``: one's complement of the one's complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


def ethernet(payload: bytes = b"", *, dst: str = "02:00:00:00:00:02", src: str = "02:00:00:00:00:01", ethertype: int = ETH_P_IP) -> bytes:
    """An Ethernet II frame (no FCS) around ``payload``."""
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, protocol: int, payload: bytes = b"", *, ttl: int = 64, ident: int = 0, tos: int = 0) -> bytes:
    """An IPv4 header (20 bytes, don't-fragment set) with its checksum, followed by ``payload``."""
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        tos,
        20 + len(payload),
        ident,
        0x4000,
        ttl,
        protocol,
        0,
        ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    )
    return header[:10] + struct.pack("!H", checksum(header)) + header[12:] + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes = b"", *, hop_limit: int = 64) -> bytes:
    """An IPv6 header (40 bytes, no extension headers) followed by ``payload``."""
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


def _pseudo_header(src: str, dst: str, protocol: int, length: int) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        return a.packed + b.packed + struct.pack("!BBH", 0, protocol, length)
    return a.packed + b.packed + struct.pack("!IxxxB", length, protocol)


@dataclass(frozen=True)
class _Link:
    ttl: int = 64
    dst_mac: str = "02:00:00:00:00:02"
    src_mac: str = "02:00:00:00:00:01"


def _transport(src: str, dst: str, protocol: int, segment: bytes, offset: int, link: _Link) -> Packet:
    """Fill in the checksum at ``offset`` of ``segment`` and wrap it in IP and Ethernet."""
    value = checksum(_pseudo_header(src, dst, protocol, len(segment)) + segment)
    if protocol == IPPROTO_UDP and value == 0:
        value = 0xFFFF  # RFC 768: a computed zero is sent as all ones
    segment = segment[:offset] + struct.pack("!H", value) + segment[offset + 2 :]
    if ipaddress.ip_address(src).version == 4:
        frame = ethernet(ipv4(src, dst, protocol, segment, ttl=link.ttl), dst=link.dst_mac, src=link.src_mac)
    else:
        packet = ipv6(src, dst, protocol, segment, hop_limit=link.ttl)
        frame = ethernet(packet, dst=link.dst_mac, src=link.src_mac, ethertype=ETH_P_IPV6)
    return Packet(frame)


def udp(
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    ttl: int = 64,
    dst_mac: str = _Link.dst_mac,
    src_mac: str = _Link.src_mac,
) -> Packet:
    """An Ethernet frame holding a UDP datagram over IPv4 or IPv6 (chosen by the addresses).

    ``ttl`` is the IPv4 TTL or IPv6 hop limit; the MAC addresses default to
    locally administered ones (use ``00:00:00:00:00:00`` for the loopback device).
    """
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return _transport(src, dst, IPPROTO_UDP, segment, 6, _Link(ttl, dst_mac, src_mac))


def tcp(
    *,
    src: str,
    dst: str,
    sport: int,
    dport: int,
    payload: bytes = b"",
    flags: str = "S",
    seq: int = 0,
    ack: int = 0,
    window: int = 65535,
    ttl: int = 64,
    dst_mac: str = _Link.dst_mac,
    src_mac: str = _Link.src_mac,
) -> Packet:
    """An Ethernet frame holding a TCP segment (no options) over IPv4 or IPv6.

    ``flags`` are letters of ``FSRPAUEC`` (``"S"`` for a SYN, ``"SA"`` for
    SYN-ACK); the other options are those of ``udp()``.
    """
    bits = sum(1 << _TCP_FLAGS.index(flag) for flag in flags.upper())
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, bits, window, 0, 0) + payload
    return _transport(src, dst, IPPROTO_TCP, segment, 16, _Link(ttl, dst_mac, src_mac))


def _layers(data: bytes) -> list[tuple[str, dict[str, object], int, int]]:
    """``(name, fields, start, end)`` per header found in ``data``, outermost first."""
    layers: list[tuple[str, dict[str, object], int, int]] = []
    if len(data) < 14:
        return layers
    ethertype = struct.unpack_from("!H", data, 12)[0]
    layers.append(("Ethernet", {"dst": data[0:6].hex(":"), "src": data[6:12].hex(":"), "type": hex(ethertype)}, 0, 14))
    offset, protocol = 14, None
    if ethertype == ETH_P_IP and len(data) >= 34:
        ihl = (data[14] & 0xF) * 4
        protocol = data[23]
        fields = {
            "src": str(ipaddress.IPv4Address(data[26:30])),
            "dst": str(ipaddress.IPv4Address(data[30:34])),
            "ttl": data[22],
            "proto": protocol,
            "len": struct.unpack_from("!H", data, 16)[0],
            "csum": hex(struct.unpack_from("!H", data, 24)[0]),
        }
        layers.append(("IPv4", fields, 14, 14 + ihl))
        offset += ihl
    elif ethertype == ETH_P_IPV6 and len(data) >= 54:
        protocol = data[20]
        fields = {
            "src": str(ipaddress.IPv6Address(data[22:38])),
            "dst": str(ipaddress.IPv6Address(data[38:54])),
            "hlim": data[21],
            "nh": protocol,
            "plen": struct.unpack_from("!H", data, 18)[0],
        }
        layers.append(("IPv6", fields, 14, 54))
        offset = 54
    if protocol == IPPROTO_UDP and len(data) >= offset + 8:
        sport, dport, length, csum = struct.unpack_from("!HHHH", data, offset)
        layers.append(("UDP", {"sport": sport, "dport": dport, "len": length, "csum": hex(csum)}, offset, offset + 8))
    elif protocol == IPPROTO_TCP and len(data) >= offset + 20:
        sport, dport, seq, ack, off, bits, _win, csum = struct.unpack_from("!HHIIBBHH", data, offset)
        flags = "".join(f for i, f in enumerate(_TCP_FLAGS) if bits >> i & 1)
        fields = {"sport": sport, "dport": dport, "flags": flags, "seq": seq, "ack": ack, "csum": hex(csum)}
        layers.append(("TCP", fields, offset, offset + (off >> 4) * 4))
    return layers


def describe(data: bytes) -> str:
    """A one-line summary of the headers in ``data``: ``Ethernet / IPv4 a > b / UDP 1 > 53 / ...``."""
    parts = []
    layers = _layers(data)
    for name, fields, _start, _end in layers:
        if name in ("IPv4", "IPv6"):
            parts.append(f"{name} {fields['src']} > {fields['dst']}")
        elif name in ("UDP", "TCP"):
            flags = f" [{fields['flags']}]" if name == "TCP" else ""
            parts.append(f"{name} {fields['sport']} > {fields['dport']}{flags}")
        else:
            parts.append(name)
    rest = len(data) - (layers[-1][3] if layers else 0)
    if rest > 0:
        parts.append(f"{rest} byte{'s' if rest != 1 else ''} payload")
    return " / ".join(parts)


def checksums_ok(data: bytes) -> dict[str, bool]:
    """For each header with a checksum in ``data``, whether the checksum is right.

    A UDP checksum of zero ("none", allowed over IPv4) counts as right.
    """
    result: dict[str, bool] = {}
    src = dst = None
    for name, fields, start, end in _layers(data):
        if name == "IPv4":
            result[name] = checksum(data[start:end]) == 0
            src, dst, length = fields["src"], fields["dst"], int(fields["len"]) - (end - start)  # type: ignore[call-overload]
        elif name == "IPv6":
            src, dst, length = fields["src"], fields["dst"], int(fields["plen"])  # type: ignore[call-overload]
        elif name in ("UDP", "TCP") and src is not None:
            protocol = IPPROTO_UDP if name == "UDP" else IPPROTO_TCP
            segment = data[start : start + length]
            zero_udp = name == "UDP" and fields["csum"] == "0x0"
            result[name] = zero_udp or checksum(_pseudo_header(str(src), str(dst), protocol, len(segment)) + segment) == 0
    return result


def hexdump_text(data: bytes, *, changed: frozenset[int] | set[int] = frozenset()) -> str:
    """16 bytes a line with offsets; bytes whose offset is in ``changed`` are bracketed."""
    lines = []
    for row in range(0, len(data), 16):
        cells = [
            f"[{data[i]:02x}]" if i in changed else f" {data[i]:02x} " for i in range(row, min(row + 16, len(data)))
        ]
        lines.append(f"{row:04x} {''.join(cells)}".rstrip())
    return "\n".join(lines)


def hexdump_html(data: bytes, *, changed: frozenset[int] | set[int] = frozenset()) -> str:
    """A ``<pre>`` hex dump; bytes whose offset is in ``changed`` are highlighted."""
    lines = []
    for row in range(0, len(data), 16):
        cells = []
        for i in range(row, min(row + 16, len(data))):
            cell = f"{data[i]:02x}"
            cells.append(f'<span style="background:#ffd54f;font-weight:bold">{cell}</span>' if i in changed else cell)
        ascii_ = html.escape("".join(chr(b) if 32 <= b < 127 else "." for b in data[row : row + 16]))
        lines.append(f'<span style="color:#888">{row:04x}</span>  {" ".join(cells)}  <span style="color:#888">{ascii_}</span>')
    return '<pre style="font-size:12px;line-height:1.3">' + "\n".join(lines) + "</pre>"


class Packet(bytes):
    """The bytes of a packet, shown with its headers and a hex dump in a notebook."""

    def __repr__(self) -> str:
        return f"<Packet {len(self)} bytes: {describe(self)}>"

    def _repr_html_(self) -> str:
        ok = checksums_ok(self)
        sums = ", ".join(f"{name} checksum {'ok' if good else 'WRONG'}" for name, good in ok.items())
        return card(
            f"Packet, {len(self)} bytes",
            f"<div>{html.escape(describe(self))}</div>",
            f"<div>{html.escape(sums)}</div>" if sums else "",
            hexdump_html(self),
        )
