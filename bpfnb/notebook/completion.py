"""Completions for ``%%bpf`` cells: helpers, macros, map methods, SEC names, tracepoints and their fields.

``complete(cell, cursor)`` is pure apart from reading the uapi header and tracefs
(both through callables that tests can replace); the magic hooks it into
IPython's completer, so it works in every frontend.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..errors import BpfnbError

__all__ = [
    "BCC_MACROS",
    "LIBBPF_MACROS",
    "MAP_METHODS",
    "Completions",
    "all_tracepoints",
    "complete",
    "declared_maps",
    "matching",
    "tracepoint_field_names",
]

#: The declaration and probe macros of BCC's ``helpers.h`` that users write.
BCC_MACROS = (
    "BPF_ARRAY", "BPF_ARRAY_OF_MAPS", "BPF_CGROUP_ARRAY", "BPF_CGROUP_STORAGE", "BPF_CPUMAP", "BPF_DEVMAP",
    "BPF_F_TABLE", "BPF_HASH", "BPF_HASH_OF_MAPS", "BPF_HISTOGRAM", "BPF_INODE_STORAGE", "BPF_ITER",
    "BPF_LPM_TRIE", "BPF_PERCPU_ARRAY", "BPF_PERCPU_CGROUP_STORAGE", "BPF_PERCPU_HASH", "BPF_PERF_ARRAY",
    "BPF_PERF_OUTPUT", "BPF_PROG", "BPF_PROG_ARRAY", "BPF_QUEUE", "BPF_RINGBUF_OUTPUT", "BPF_SK_STORAGE",
    "BPF_SOCKHASH", "BPF_SOCKMAP", "BPF_STACK", "BPF_STACK_TRACE", "BPF_STACK_TRACE_BUILDID", "BPF_TABLE",
    "BPF_TABLE_PINNED", "BPF_TABLE_PUBLIC", "BPF_TABLE_SHARED", "BPF_TASK_STORAGE", "BPF_XSKMAP",
    "KFUNC_PROBE", "KMOD_RET", "KRETFUNC_PROBE", "LSM_PROBE", "RAW_TRACEPOINT_PROBE", "TRACEPOINT_PROBE",
    "PT_REGS_PARM1", "PT_REGS_PARM2", "PT_REGS_PARM3", "PT_REGS_PARM4", "PT_REGS_PARM5", "PT_REGS_PARM6",
    "PT_REGS_RC", "PT_REGS_IP", "PT_REGS_SP", "PT_REGS_FP",
    "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST", "BPF_F_CURRENT_CPU",
)  # fmt: skip

#: What libbpf cells write from libbpf's headers: CO-RE reads, program and map declarations.
LIBBPF_MACROS = (
    "BPF_CORE_READ", "BPF_CORE_READ_INTO", "BPF_CORE_READ_STR_INTO", "BPF_CORE_READ_USER",
    "BPF_CORE_READ_USER_INTO", "BPF_PROBE_READ", "BPF_PROBE_READ_INTO", "bpf_core_field_exists",
    "bpf_core_field_size", "bpf_core_field_offset", "bpf_core_type_exists", "bpf_core_type_size",
    "bpf_core_enum_value", "bpf_core_enum_value_exists", "bpf_core_read", "bpf_core_read_str",
    "BPF_PROG", "BPF_KPROBE", "BPF_KRETPROBE", "BPF_UPROBE", "BPF_URETPROBE", "BPF_KSYSCALL", "SEC",
    "__uint", "__type", "__array", "__always_inline", "bpf_printk", "BPF_ANY", "BPF_NOEXIST", "BPF_EXIST",
    "BPF_F_CURRENT_CPU", "BPF_MAP_TYPE_HASH", "BPF_MAP_TYPE_ARRAY", "BPF_MAP_TYPE_PERCPU_HASH",
    "BPF_MAP_TYPE_PERCPU_ARRAY", "BPF_MAP_TYPE_LRU_HASH", "BPF_MAP_TYPE_RINGBUF", "BPF_MAP_TYPE_PERF_EVENT_ARRAY",
    "BPF_MAP_TYPE_STACK_TRACE", "BPF_MAP_TYPE_QUEUE", "BPF_MAP_TYPE_STACK", "BPF_MAP_TYPE_LPM_TRIE",
    "BPF_MAP_TYPE_PROG_ARRAY", "BPF_MAP_TYPE_SOCKMAP", "BPF_MAP_TYPE_SOCKHASH", "BPF_MAP_TYPE_SK_STORAGE",
    "BPF_MAP_TYPE_TASK_STORAGE", "BPF_MAP_TYPE_CGRP_STORAGE", "BPF_MAP_TYPE_INODE_STORAGE",
)  # fmt: skip

_HASH = ("lookup", "lookup_or_try_init", "update", "insert", "delete", "increment", "atomic_increment")
_ARRAY = ("lookup", "update", "increment", "atomic_increment")
_SOCK = ("update", "delete")

#: Map kind -> the methods BCC rewrites for it (``name.method(...)`` in C).
MAP_METHODS: dict[str, tuple[str, ...]] = {
    "hash": _HASH,
    "array": _ARRAY,
    "perf_output": ("perf_submit", "perf_submit_skb"),
    "ringbuf": ("ringbuf_output", "ringbuf_reserve", "ringbuf_submit", "ringbuf_discard", "ringbuf_query"),
    "stack_trace": ("get_stackid",),
    "perf_array": ("perf_read", "perf_counter_value"),
    "prog": ("call",),
    "redirect": ("redirect_map",),
    "xskmap": ("redirect_map", "lookup"),
    "queue": ("push", "pop", "peek"),
    "sockmap": _SOCK + ("sock_map_update", "msg_redirect_map", "sk_redirect_map"),
    "sockhash": _SOCK + ("sock_hash_update", "msg_redirect_hash", "sk_redirect_hash"),
    "sk_storage": ("sk_storage_get", "sk_storage_delete"),
    "inode_storage": ("inode_storage_get", "inode_storage_delete"),
    "task_storage": ("task_storage_get", "task_storage_delete"),
    "cgroup_storage": ("lookup", "update"),
    "cgroup_array": ("check_current_task",),
    "map_of_maps": ("lookup",),
}
_ALL_METHODS = tuple(sorted({m for methods in MAP_METHODS.values() for m in methods}))

_MACRO_KIND = {
    "BPF_HASH": "hash", "BPF_PERCPU_HASH": "hash", "BPF_LPM_TRIE": "hash", "BPF_HISTOGRAM": "hash",
    "BPF_ARRAY": "array", "BPF_PERCPU_ARRAY": "array", "BPF_PERF_OUTPUT": "perf_output",
    "BPF_RINGBUF_OUTPUT": "ringbuf", "BPF_STACK_TRACE": "stack_trace", "BPF_STACK_TRACE_BUILDID": "stack_trace",
    "BPF_PERF_ARRAY": "perf_array", "BPF_PROG_ARRAY": "prog", "BPF_DEVMAP": "redirect", "BPF_CPUMAP": "redirect",
    "BPF_XSKMAP": "xskmap", "BPF_QUEUE": "queue", "BPF_STACK": "queue", "BPF_SOCKMAP": "sockmap",
    "BPF_SOCKHASH": "sockhash", "BPF_SK_STORAGE": "sk_storage", "BPF_INODE_STORAGE": "inode_storage",
    "BPF_TASK_STORAGE": "task_storage", "BPF_CGROUP_STORAGE": "cgroup_storage",
    "BPF_PERCPU_CGROUP_STORAGE": "cgroup_storage", "BPF_CGROUP_ARRAY": "cgroup_array",
    "BPF_ARRAY_OF_MAPS": "map_of_maps", "BPF_HASH_OF_MAPS": "map_of_maps",
}  # fmt: skip
# BPF_TABLE("<type>", key, leaf, name, size): the type string names the kind.
_TABLE_KIND = {
    "hash": "hash", "percpu_hash": "hash", "lru_hash": "hash", "lru_percpu_hash": "hash", "lpm_trie": "hash",
    "histogram": "hash", "array": "array", "percpu_array": "array", "prog": "prog", "perf_output": "perf_output",
    "stack_trace": "stack_trace", "queue": "queue", "stack": "queue", "devmap": "redirect", "cpumap": "redirect",
}  # fmt: skip

_DECLARATION = re.compile(r"\b(BPF_[A-Z_]+)\s*\(([^;{}]*?)\)\s*;")
# A BTF-defined map: struct { __uint(type, BPF_MAP_TYPE_X); ... } name SEC(".maps");
_BTF_MAP = re.compile(r"__uint\s*\(\s*type\s*,\s*BPF_MAP_TYPE_(\w+)\s*\)[^}]*\}\s*(\w+)\s+SEC\s*\(\s*\"\.maps\"")


def _arguments(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def declared_maps(cell: str) -> dict[str, str]:
    """``{map name: kind}`` for the map declarations in ``cell``, BCC's and libbpf's (kind ``""`` if unknown)."""
    maps: dict[str, str] = {name: _TABLE_KIND.get(kind.lower(), "") for kind, name in _BTF_MAP.findall(cell)}
    for macro, args_text in _DECLARATION.findall(cell):
        args = _arguments(args_text)
        if macro.startswith(("BPF_TABLE", "BPF_F_TABLE")):
            if len(args) >= 4:
                maps[args[3]] = _TABLE_KIND.get(args[0].strip('"'), "")
        elif macro in _MACRO_KIND and args and re.fullmatch(r"\w+", args[0]):
            maps[args[0]] = _MACRO_KIND[macro]
    return maps


@dataclass(frozen=True)
class Completions:
    """What may replace ``cell[start:end]``, and what sort of thing it is."""

    start: int
    end: int
    matches: tuple[str, ...] = ()
    kind: str = ""

    def __repr__(self) -> str:
        shown = ", ".join(self.matches[:8]) + (", ..." if len(self.matches) > 8 else "")
        return f"<Completions {self.kind or 'none'} [{self.start}:{self.end}]: {shown}>"

    def _repr_html_(self) -> str:
        items = "".join(f"<code>{html.escape(m)}</code> " for m in self.matches)
        return f"<div><b>{len(self.matches)} {html.escape(self.kind or 'completions')}</b>: {items}</div>"


@functools.lru_cache(maxsize=1)
def _helper_names() -> tuple[str, ...]:
    from ..tools.helpers import helper_docs

    try:
        return tuple(doc.name for doc in helper_docs())
    except BpfnbError:
        return ()


def all_tracepoints() -> Sequence[str]:
    """``category:event`` of every tracepoint of this kernel (none where tracefs cannot be read)."""
    from ..kernel.tracefs import tracepoints

    try:
        return tracepoints("*")
    except BpfnbError:
        return ()


def tracepoint_field_names(name: str) -> Sequence[str]:
    """The fields of the tracepoint ``category:event`` (none where it cannot be read)."""
    from ..kernel.tracefs import tracepoint

    try:
        return [f.name for f in tracepoint(name).fields]
    except (BpfnbError, ValueError):
        return ()


@functools.lru_cache(maxsize=1)
def _section_names() -> tuple[str, ...]:
    from ..engines.libbpf.explain import known_sections

    try:
        # libbpf lists "kprobe+" for SEC("kprobe") and SEC("kprobe/<target>").
        return tuple(name.rstrip("+") for name in known_sections())
    except BpfnbError:
        return ()


def _in_section(prefix: str, cursor: int, tracepoint_names: Callable[[], Sequence[str]]) -> Completions:
    """Inside ``SEC("...``: a section name, or a tracepoint after ``tracepoint/``, ``tp_btf/``, ``raw_tp/``."""
    kind, slash, target = prefix.partition("/")
    if slash and kind in ("tracepoint", "tp"):
        category, slash, event = target.partition("/")
        names = tracepoint_names()
        if slash:
            return matching(event, cursor, (n.partition(":")[2] for n in names if n.startswith(category + ":")), "tracepoint")
        return matching(category, cursor, (n.partition(":")[0] for n in names), "tracepoint category")
    if slash and kind in ("tp_btf", "raw_tp", "raw_tracepoint"):
        return matching(target, cursor, (n.partition(":")[2] for n in tracepoint_names()), "tracepoint")
    return matching(prefix, cursor, _section_names(), "section")


def matching(prefix: str, cursor: int, candidates: Iterable[str], kind: str) -> Completions:
    """The ``candidates`` that complete ``prefix``, which ends at ``cursor``, as one sort of thing."""
    matches = tuple(sorted({c for c in candidates if c.startswith(prefix)}))
    return Completions(cursor - len(prefix), cursor, matches, kind if matches else "")


def complete(
    cell: str,
    cursor: int | None = None,
    *,
    helper_names: Callable[[], Sequence[str]] = _helper_names,
    tracepoint_names: Callable[[], Sequence[str]] = all_tracepoints,
    tracepoint_fields: Callable[[str], Sequence[str]] = tracepoint_field_names,
) -> Completions:
    """Completions at ``cursor`` (an offset into ``cell``; the end by default).

    In order: a section name (or its tracepoint) inside ``SEC("``; a
    tracepoint category or event inside ``TRACEPOINT_PROBE(`` and
    ``RAW_TRACEPOINT_PROBE(``; the fields of the enclosing tracepoint after
    ``args->``; the methods of a map declared in the cell after ``name.``;
    otherwise helper names, the macros of the cell's engine (BCC's or
    libbpf's) and the cell's map names for the word being typed.
    """
    cursor = len(cell) if cursor is None else cursor
    before = cell[:cursor]
    if m := re.search(r'\bSEC\s*\(\s*"([\w./+]*)$', before):
        return _in_section(m[1], cursor, tracepoint_names)
    if m := re.search(r"\bTRACEPOINT_PROBE\s*\(\s*(\w+)\s*,\s*(\w*)$", before):
        events = [name.partition(":")[2] for name in tracepoint_names() if name.startswith(m[1] + ":")]
        return matching(m[2], cursor, events, "tracepoint")
    if m := re.search(r"\bTRACEPOINT_PROBE\s*\(\s*(\w*)$", before):
        return matching(m[1], cursor, (name.partition(":")[0] for name in tracepoint_names()), "tracepoint category")
    if m := re.search(r"\bRAW_TRACEPOINT_PROBE\s*\(\s*(\w*)$", before):
        return matching(m[1], cursor, (name.partition(":")[2] for name in tracepoint_names()), "tracepoint")
    if m := re.search(r"\bargs\s*->\s*(\w*)$", before):
        probes = re.findall(r"\bTRACEPOINT_PROBE\s*\(\s*(\w+)\s*,\s*(\w+)\s*\)", before)
        fields = tracepoint_fields(":".join(probes[-1])) if probes else ()
        return matching(m[1], cursor, fields, "tracepoint field")
    if m := re.search(r"\b(\w+)\s*\.\s*(\w*)$", before):
        maps = declared_maps(cell)
        if m[1] not in maps:
            return Completions(cursor, cursor)
        methods = MAP_METHODS.get(maps[m[1]], _ALL_METHODS)
        return matching(m[2], cursor, methods, "map method")
    m = re.search(r"\b(\w+)$", before)
    if m is None:
        return Completions(cursor, cursor)
    word = m[1]
    from ..engines import detect_engine

    macros = LIBBPF_MACROS if detect_engine(cell) == "libbpf" else BCC_MACROS
    candidates = [*macros, *declared_maps(cell)]
    if word.startswith("bpf_") or not word.isupper():
        candidates += helper_names()
    return matching(word, cursor, candidates, "helper" if word.startswith("bpf_") else "name")
