"""The kernel itself checks the builder's checksums: it drops a frame whose IP/UDP/TCP checksum is wrong.

Each frame is injected on the loopback device of a network namespace created for
the test (``unshare --net``) by a small script that does not use bpfnb.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from bpfnb.packets.builder import tcp, udp

RECEIVER = r"""
import socket, sys
kind, addr, port, frame = sys.argv[1], sys.argv[2], int(sys.argv[3]), bytes.fromhex(sys.argv[4])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
if kind == "udp":
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((addr, port))
else:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((addr, port))
    sock.listen()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # capture the reply
    sock.bind(("lo", 0))
out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
out.bind(("lo", 0))
out.send(frame)
sock.settimeout(0.5)
try:
    while True:
        got = sock.recv(4096)
        if got != frame:
            print(got.hex())
            break
except socket.timeout:
    print("nothing")
"""

ZERO = "00:00:00:00:00:00"


def kernel_answer(kind: str, src: str, dst: str, frame: bytes) -> str:
    setup = "ip link set lo up && ip addr add 10.9.9.1/24 dev lo && exec \"$@\""
    out = subprocess.run(
        ["unshare", "--net", "sh", "-c", setup, "sh", sys.executable, "-c", RECEIVER, kind, dst, "5353", frame.hex()],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare(1) to make a network namespace")
@pytest.mark.parametrize("kind", ["udp", "tcp"])
@pytest.mark.parametrize(("src", "dst"), [("10.9.9.2", "10.9.9.1"), ("::1", "::1")])
def test_kernel_accepts_built_frames_and_drops_corrupted_ones(kind: str, src: str, dst: str) -> None:
    build = udp if kind == "udp" else tcp
    frame = build(src=src, dst=dst, sport=40000, dport=5353, payload=b"hello", dst_mac=ZERO, src_mac=ZERO)
    answer = kernel_answer(kind, src, dst, frame)
    if kind == "udp":
        assert answer == b"hello".hex()  # delivered to the bound socket
    else:
        assert answer != "nothing"  # the kernel answered the SYN (SYN-ACK)
    corrupted = frame[:-1] + bytes([frame[-1] ^ 1])
    assert kernel_answer(kind, src, dst, corrupted) == "nothing"
