"""The packet lab: run an XDP, tc or socket-filter function on a packet with ``BPF_PROG_TEST_RUN``.

The kernel runs the loaded program on a copy of the packet, without any network
device, and hands back the return code, the packet as the program left it and
the mean run time. Nothing is attached, so nothing needs cleaning up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from ..display.html import card, facts, note, text_table
from ..errors import ArgumentError, BpfnbError
from ..kernel import libbpf as _libbpf
from ..kernel.constants import PROG_TYPES, TC_ACTIONS, XDP_ACTIONS
from .builder import Packet, checksums_ok, describe, hexdump_html, hexdump_text

__all__ = ["PROGRAM_TYPES", "Runnable", "TestRunResult", "return_code_name", "test_run"]

#: Program types the packet lab runs, with their BPF_PROG_TYPE_* numbers.
PROGRAM_TYPES = {name: PROG_TYPES[name] for name in ("xdp", "sched_cls", "socket_filter")}
_ALIASES = {"tc": "sched_cls", "classifier": "sched_cls", "socket": "socket_filter"}
_CONTEXT_TYPES = {"xdp_md": "xdp", "__sk_buff": "sched_cls"}

_ETH_HLEN = 14


class Runnable(Protocol):
    """A program whose functions can be test-run: a :class:`bpfnb.Program`."""

    source: str

    def program_type(self, function: str) -> str | None:
        """The program type ``function`` is loaded as, where the cell fixes it."""

    def load_function(self, function: str, prog_type: str) -> int:
        """Load ``function`` as ``prog_type`` if it is not loaded yet; return its fd."""


def return_code_name(prog_type: str, code: int, *, packet_length: int = 0) -> str:
    """The name of a program's return code: ``XDP_DROP``, ``TC_ACT_SHOT``, ``keep 40 bytes``..."""
    if prog_type == "xdp":
        return XDP_ACTIONS.get(code, f"unknown XDP action {code}")
    if prog_type == "sched_cls":
        return TC_ACTIONS.get(code, f"unknown tc action {code}")
    if code == 0:
        return "drop"
    return "keep the whole packet" if code >= packet_length > 0 else f"keep {code} bytes"


@dataclass(frozen=True)
class TestRunResult:
    """What one ``test_run`` did to a packet.

    Attributes
    ----------
    retval : int
        The program's return code (signed for tc programs, where -1 is ``TC_ACT_UNSPEC``).
    action : str
        Its name: ``XDP_PASS``, ``TC_ACT_SHOT``; for a socket filter ``drop`` or
        ``keep N bytes`` (a socket filter returns how many bytes to keep).
    packet_in, packet_out : Packet
        The packet given and the packet as the program left it.
    diff : list of (offset, before, after)
        Bytes that differ; a byte only one side has is ``None`` on the other.
    ns_per_run : int
        The kernel's mean run time over ``repeat`` runs.
    """

    __test__ = False  # not a pytest test class, despite the name

    function: str
    prog_type: str
    retval: int
    action: str
    packet_in: Packet
    packet_out: Packet
    repeat: int
    ns_per_run: int
    ctx_out: bytes | None = None
    diff: list[tuple[int, int | None, int | None]] = field(default_factory=list)

    @property
    def changed(self) -> set[int]:
        """Offsets in ``packet_out`` of the bytes the program changed or added."""
        return {offset for offset, _before, after in self.diff if after is not None}

    def __repr__(self) -> str:
        lines = [
            f"<TestRunResult {self.prog_type} {self.function}: {self.action} (retval {self.retval}), "
            f"{len(self.diff)} byte(s) changed, {self.ns_per_run} ns/run over {self.repeat} run(s)>",
            f"in:  {describe(self.packet_in)}",
            f"out: {describe(self.packet_out)}",
        ]
        if self.diff:
            rows = [(f"0x{o:04x}", _hex(b), _hex(a)) for o, b, a in self.diff[:16]]
            lines.append(text_table(["offset", "before", "after"], rows))
            lines.append(hexdump_text(self.packet_out, changed=self.changed))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [
            ("function", f"{self.function} ({self.prog_type})"),
            ("returned", f"{self.action} ({self.retval})"),
            ("time", f"{self.ns_per_run} ns per run, {self.repeat} run(s)"),
            ("in", describe(self.packet_in)),
            ("out", describe(self.packet_out)),
            ("bytes changed", len(self.diff)),
        ]
        sums = checksums_ok(self.packet_out)
        parts: list[str] = [facts(rows)]
        if self.diff:
            parts.append(
                "".join(
                    note(f"{name} checksum of the output is {'right' if ok else 'WRONG'}", kind="ok" if ok else "bad")
                    for name, ok in sums.items()
                )
            )
        if self.prog_type == "socket_filter":
            parts.append(note("The socket filter saw the packet from its IP header on, as a socket does."))
        parts.append(hexdump_html(self.packet_out, changed=self.changed))
        return card(f"test_run: {self.function} → {self.action}", *parts)


def _hex(value: int | None) -> str:
    return "--" if value is None else f"{value:02x}"


def _diff(before: bytes, after: bytes) -> list[tuple[int, int | None, int | None]]:
    length = max(len(before), len(after))
    pairs = ((i, before[i] if i < len(before) else None, after[i] if i < len(after) else None) for i in range(length))
    return [(i, b, a) for i, b, a in pairs if b != a]


def _resolve_type(source: str, function: str, prog_type: str | None) -> str:
    if prog_type is not None:
        name = prog_type.lower().removeprefix("bpf_prog_type_")
        name = _ALIASES.get(name, name)
        if name not in PROGRAM_TYPES:
            raise ArgumentError(f"test_run runs {sorted(PROGRAM_TYPES)} programs (or 'tc'), not {prog_type!r}")
        return name
    match = re.search(rf"\b{re.escape(function)}\s*\(\s*struct\s+(\w+)\s*\*", source)
    if match is None or match.group(1) not in _CONTEXT_TYPES:
        raise ArgumentError(
            f"cannot tell the program type of {function!r} from its first parameter; "
            "pass prog_type='xdp', 'sched_cls' or 'socket_filter'"
        )
    return _CONTEXT_TYPES[match.group(1)]


def test_run(
    program: Runnable,
    function: str,
    packet: bytes,
    *,
    repeat: int = 1,
    prog_type: str | None = None,
    ctx: bytes | None = None,
) -> TestRunResult:
    """Run ``function`` of ``program`` on ``packet`` in the kernel, without attaching it.

    Parameters
    ----------
    program : bpfnb.Program
        A compiled program (``attach=False`` is enough).
    function : str
        The C function to run.
    packet : bytes
        A whole frame, from the Ethernet header on (see ``bpfnb.udp``/``bpfnb.tcp``).
    repeat : int
        How many times the kernel runs the program; ``ns_per_run`` is the mean.
    prog_type : str, optional
        ``"xdp"``, ``"sched_cls"`` (``"tc"``) or ``"socket_filter"``. By default
        it follows the function's first parameter: ``struct xdp_md *`` is XDP,
        ``struct __sk_buff *`` is tc.
    ctx : bytes, optional
        Input context (``struct xdp_md`` / ``struct __sk_buff``) for the kernel
        to start from; the context the program left is in ``ctx_out``.

    Returns
    -------
    TestRunResult
    """
    if repeat < 1:
        raise ArgumentError(f"repeat must be at least 1, not {repeat}")
    if len(packet) < _ETH_HLEN:
        raise ArgumentError(f"a packet starts with a {_ETH_HLEN}-byte Ethernet header; got {len(packet)} bytes")
    kind = _resolve_type(program.source, function, prog_type or program.program_type(function))
    fd = program.load_function(function, kind)
    try:
        retval, out, duration, ctx_out = _libbpf.prog_test_run(fd, bytes(packet), repeat=repeat, ctx=ctx)
    except OSError as exc:
        raise BpfnbError(
            f"the kernel refused to test-run {function!r}: {exc.strerror}",
            hint="Check that the function was loaded as the type it is written for (prog_type=...).",
        ) from exc
    signed = retval - (1 << 32) if kind == "sched_cls" and retval >= 1 << 31 else retval
    return TestRunResult(
        function=function,
        prog_type=kind,
        retval=signed,
        action=return_code_name(kind, signed, packet_length=len(packet)),
        packet_in=Packet(packet),
        packet_out=Packet(out),
        repeat=repeat,
        ns_per_run=duration,
        ctx_out=ctx_out,
        diff=_diff(bytes(packet), out),
    )


test_run.__test__ = False  # type: ignore[attr-defined]  # keep pytest from collecting it where imported
