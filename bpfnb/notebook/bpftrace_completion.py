"""Completions for ``%%bpftrace`` cells: probe types, tracepoints, builtins, functions, maps, tracepoint fields.

``complete_bpftrace(cell, cursor)`` is pure apart from reading tracefs
(through callables that tests can replace); the magic's matcher calls it for
cells that start with ``%%bpftrace``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..engines.bpftrace.script import PROVIDERS, find_maps, find_probes, provider
from ..engines.bpftrace.text import mask
from .completion import Completions, all_tracepoints, matching, tracepoint_field_names

__all__ = ["BUILTINS", "FUNCTIONS", "complete_bpftrace"]

#: bpftrace 0.17's builtin variables.
BUILTINS = (
    "pid", "tid", "uid", "gid", "nsecs", "elapsed", "numaid", "cpu", "comm", "kstack", "ustack", "func", "probe",
    "curtask", "rand", "cgroup", "cpid", "retval", "args", "username",
    *(f"arg{i}" for i in range(10)), *(f"sarg{i}" for i in range(10)),
)  # fmt: skip

#: bpftrace 0.17's functions, map functions (count, hist...) included.
FUNCTIONS = (
    "printf", "time", "join", "str", "buf", "ksym", "usym", "kaddr", "uaddr", "reg", "system", "exit", "cgroupid",
    "ntop", "pton", "kstack", "ustack", "cat", "signal", "strncmp", "override", "sizeof", "offsetof", "print",
    "strftime", "path", "macaddr", "cgroup_path", "bswap", "skboutput", "uptr", "kptr", "unwatch",
    "count", "sum", "avg", "min", "max", "stats", "hist", "lhist", "delete", "clear", "zero",
)  # fmt: skip

#: What follows ``software:`` and ``hardware:`` (perf's event names).
SOFTWARE_EVENTS = (
    "cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations", "minor-faults", "major-faults",
    "alignment-faults", "emulation-faults", "dummy", "bpf-output",
)  # fmt: skip
HARDWARE_EVENTS = (
    "cpu-cycles", "instructions", "cache-references", "cache-misses", "branch-instructions", "branch-misses",
    "bus-cycles", "frontend-stalls", "backend-stalls", "ref-cycles",
)  # fmt: skip
# The units of profile: and interval: probes.
_RATES = {"profile": ("hz", "s", "ms", "us"), "interval": ("s", "ms", "us", "hz")}


def _probe_types() -> list[str]:
    return [name if name in ("BEGIN", "END") else f"{name}:" for name in PROVIDERS]


def _in_probe_list(word: str, cursor: int, tracepoint_names: Callable[[], Sequence[str]]) -> Completions:
    """The probe being written at the top level: its type, then its tracepoint, event or unit."""
    _, colon, rest = word.partition(":")
    if not colon:
        return matching(word, cursor, _probe_types(), "probe type")
    kind = provider(word)
    if kind == "tracepoint":
        category, colon, event = rest.partition(":")
        if colon:
            events = (n.partition(":")[2] for n in tracepoint_names() if n.startswith(category + ":"))
            return matching(event, cursor, events, "tracepoint")
        return matching(category, cursor, (n.partition(":")[0] for n in tracepoint_names()), "tracepoint category")
    if kind in ("software", "hardware"):
        return matching(rest, cursor, SOFTWARE_EVENTS if kind == "software" else HARDWARE_EVENTS, f"{kind} event")
    if kind in _RATES and ":" not in rest:
        return matching(rest, cursor, _RATES[kind], "unit")
    return Completions(cursor, cursor)


def _last_block_start(code: str) -> int:
    """Where the text of the last top-level block of ``code`` (its probes, then its body) begins."""
    depth, start = 0, 0
    for i, ch in enumerate(code):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
    return start


def complete_bpftrace(
    cell: str,
    cursor: int | None = None,
    *,
    tracepoint_names: Callable[[], Sequence[str]] = all_tracepoints,
    tracepoint_fields: Callable[[str], Sequence[str]] = tracepoint_field_names,
) -> Completions:
    """Completions at ``cursor`` (an offset into the script; the end by default).

    Outside a block: probe types, then the categories and events of
    ``tracepoint:``, the events of ``software:``/``hardware:``, the units of
    ``profile:``/``interval:``. Inside a block: the fields of the block's
    tracepoint after ``args->``, the cell's maps after ``@``, and builtins and
    functions for a word. Nothing inside comments and strings.
    """
    cursor = len(cell) if cursor is None else cursor
    before = cell[:cursor]
    masked = mask(before)
    if masked[-1:] != before[-1:] or masked.count('"') % 2:
        return Completions(cursor, cursor)  # in a comment or a string
    inside = masked.count("{") > masked.count("}")
    if not inside:
        word = re.search(r"[\w:*./+-]*$", masked)
        return _in_probe_list(word[0] if word else "", cursor, tracepoint_names)
    if field := re.search(r"\bargs\s*(?:->|\.)\s*(\w*)$", masked):
        # The fields of the enclosing block's last tracepoint that a wildcard does not hide.
        block = _last_block_start(masked)
        probes = [p for p in find_probes(before) if p.offset >= block]
        named = [p.spec.partition(":")[2] for p in probes if p.provider == "tracepoint" and "*" not in p.spec]
        return matching(field[1], cursor, tracepoint_fields(named[-1]) if named else (), "tracepoint field")
    if at := re.search(r"@\w*$", masked):
        return matching(at[0], cursor, find_maps(cell), "map")
    word = re.search(r"\b\w+$", masked)
    if word is None:
        return Completions(cursor, cursor)
    return matching(word[0], cursor, (*BUILTINS, *FUNCTIONS), "name")
