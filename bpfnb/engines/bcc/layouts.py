"""Kernel struct reads a BCC cell makes, checked against the running kernel's own layout.

BCC compiles against the kernel headers installed on the machine. When they
belong to another kernel (a distribution's generic headers on a cloud or
rolling kernel), ``task->tgid`` compiles to the header's offset and reads the
wrong bytes without any error. This module finds the kernel struct reads a
cell makes (``struct task_struct *t ... t->real_parent->tgid``), asks BCC
itself where the headers put each field (a probe module whose map sizes are
the offsets), and compares with the running kernel's BTF.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from ...decode.btf import Btf, BtfType, Kind
from ...errors import BpfnbError, LayoutError
from ...kernel.environment import KERNEL_BTF, find_kernel_headers

__all__ = ["FieldRead", "check_layouts", "struct_reads"]

_DECLARED = re.compile(r"\b(?:struct|union)\s+(\w+)\s*\*\s*(?:const\s+)?(\w+)\b")
_CAST = re.compile(r"\(\s*\(\s*(?:struct|union)\s+(\w+)\s*\*\s*\)\s*[^()]*(?:\([^()]*\))?[^()]*\)")
_HOPS = re.compile(r"(?:\s*(?:->|\.)\s*\w+)+")
_HOP = re.compile(r"(->|\.)\s*(\w+)")


@dataclass(frozen=True)
class FieldRead:
    """One field of a kernel struct that a cell reads, with where the running kernel keeps it."""

    line: int
    text: str
    #: ``struct task_struct`` or ``union ...``.
    record: str
    path: str
    kernel_offset: int
    kernel_size: int

    @property
    def struct(self) -> str:
        """The record's name without its keyword."""
        return self.record.split()[-1]


def struct_reads(source: str, kernel: Btf, *, first_line: int = 1) -> list[FieldRead]:
    """The fields of kernel structs that ``source`` reads through pointers, resolved in ``kernel``'s BTF."""
    pointers = {name: struct for struct, name in _DECLARED.findall(source) if _find_record(kernel, struct) is not None}
    reads: dict[tuple[str, str], FieldRead] = {}
    for number, line in enumerate(source.splitlines(), start=first_line):
        code = line.split("//", 1)[0]
        for struct, text, hops in _chains(code, pointers):
            for read in _resolve(kernel, struct, hops, number, text):
                reads.setdefault((read.struct, read.path), read)
    return list(reads.values())


def _chains(code: str, pointers: dict[str, str]) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """``(struct, the chain's text, [(arrow or dot, member)...])`` for each access chain on a line."""
    for name, struct in pointers.items():
        for found in re.finditer(rf"\b{re.escape(name)}((?:\s*(?:->|\.)\s*\w+)+)", code):
            hops = _HOP.findall(found.group(1))
            if hops and hops[0][0] == "->":
                yield struct, found.group(0), hops
    for cast in _CAST.finditer(code):
        rest = _HOPS.match(code, cast.end())
        if rest:
            hops = _HOP.findall(rest.group(0))
            if hops and hops[0][0] == "->":
                yield cast.group(1), code[cast.start() : rest.end()], hops


def _resolve(kernel: Btf, struct: str, hops: list[tuple[str, str]], line: int, text: str) -> Iterator[FieldRead]:
    """Each pointer hop of a chain as one read: ``t->real_parent->tgid`` reads task_struct.real_parent, then .tgid."""
    record = _find_record(kernel, struct)
    path: list[str] = []
    offset = 0
    for index, (_arrow, member) in enumerate(hops):
        if record is None:
            return
        found = _member(kernel, record, member)
        if found is None:
            return
        member_offset, member_type = found
        path.append(member)
        offset += member_offset
        target = kernel.type(kernel.resolve(member_type))
        following = hops[index + 1][0] if index + 1 < len(hops) else None
        if following == ".":
            record = target if target.kind in (Kind.STRUCT, Kind.UNION) else None
            continue
        if _is_bitfield(record, member):
            return  # offsetof cannot name a bit-field: nothing to compare
        keyword = "union" if record.kind == Kind.UNION else "struct"
        yield FieldRead(line, text, f"{keyword} {struct}", ".".join(path), offset // 8, kernel.size_of(member_type))
        pointee = kernel.type(kernel.resolve(target.type_id)) if target.kind == Kind.PTR else None
        if pointee is None or pointee.kind not in (Kind.STRUCT, Kind.UNION):
            return
        record, struct, path, offset = pointee, pointee.name, [], 0


def _is_bitfield(record: BtfType, name: str) -> bool:
    return any(m.name == name and m.bitfield_size for m in record.members)


def _member(kernel: Btf, record: BtfType, name: str) -> tuple[int, int] | None:
    """``(bit offset, type id)`` of member ``name``, looking inside anonymous structs and unions."""
    for member in record.members:
        if member.name == name:
            return member.bit_offset, member.type_id
        if not member.name:
            inner = kernel.type(kernel.resolve(member.type_id))
            if inner.kind in (Kind.STRUCT, Kind.UNION):
                found = _member(kernel, inner, name)
                if found is not None:
                    return member.bit_offset + found[0], found[1]
    return None


def _find_record(kernel: Btf, name: str) -> BtfType | None:
    for kind in (Kind.STRUCT, Kind.UNION):
        for type_id in kernel.find(name, kind):
            found = kernel.type(type_id)
            if found.members:
                return found
    return None


@functools.lru_cache(maxsize=1)
def _kernel_btf() -> Btf:
    return Btf.from_file(KERNEL_BTF)


def check_layouts(source: str, *, first_line: int, cflags: tuple[str, ...]) -> None:
    """Raise a :class:`LayoutError` if the cell reads a kernel field the headers place differently.

    Does nothing when the headers are the running kernel's own, when the
    kernel has no BTF to compare with, or when the cell reads no kernel struct.
    """
    headers = find_kernel_headers()
    if headers.matches or not KERNEL_BTF.exists() or not _DECLARED.search(source):
        return
    reads = struct_reads(source, _kernel_btf(), first_line=first_line)
    if not reads:
        return
    placed = _header_layouts(source, reads, cflags)
    wrong = [(read, at) for read, at in zip(reads, placed) if at != (read.kernel_offset, read.kernel_size)]
    if not wrong:
        return
    read, (offset, size) = wrong[0]
    lines = [
        f"line {r.line}: {r.record}.{r.path}: headers offset {o} ({s} bytes), running kernel offset "
        f"{r.kernel_offset} ({r.kernel_size} bytes)   in: {r.text}"
        for r, (o, s) in wrong
    ]
    raise LayoutError(
        f"line {read.line} reads {read.record}.{read.path} at offset {offset}, but the running kernel "
        f"({headers.running}) keeps it at offset {read.kernel_offset}: the installed headers "
        f"({headers.describe()}) are another kernel's, so BCC would read the wrong bytes",
        hint="Read it in a libbpf cell (#include \"vmlinux.h\", BPF_CORE_READ(t, ...)): CO-RE takes offsets "
        "from the running kernel. Helpers such as bpf_get_current_pid_tgid() are right in either. "
        "--trust-headers (trust_headers=True) loads the cell anyway.",
        details="\n".join(lines),
        line=read.line,
    )


def _header_layouts(source: str, reads: list[FieldRead], cflags: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the headers BCC compiles with place each read field: ``(offset, size)``.

    A probe module asks BCC itself: each field gets two byte arrays sized
    ``offsetof + 1`` and ``sizeof``, whose sizes the kernel reports back.
    """
    from .compiler import compile_source

    includes = "\n".join(line for line in source.splitlines() if line.lstrip().startswith("#include"))
    probes = []
    for index, read in enumerate(reads):
        probes.append(f"BPF_ARRAY(_bpfnb_offset{index}, u8, offsetof({read.record}, {read.path}) + 1);")
        probes.append(f"BPF_ARRAY(_bpfnb_size{index}, u8, sizeof((({read.record} *)0)->{read.path}));")
    try:
        bpf, _log = compile_source(includes + "\n" + "\n".join(probes) + "\n", cflags=cflags)
    except BpfnbError:
        return [(read.kernel_offset, read.kernel_size) for read in reads]  # the headers cannot say: nothing to compare
    try:
        return [
            (bpf[f"_bpfnb_offset{i}".encode()].max_entries - 1, bpf[f"_bpfnb_size{i}".encode()].max_entries)
            for i in range(len(reads))
        ]
    finally:
        bpf.cleanup()

