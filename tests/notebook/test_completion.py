"""Completions in %%bpf cells; tracefs is replaced by fixed names so the tests run without root."""

from __future__ import annotations

import functools

import pytest

from bpfnb.notebook.completion import BCC_MACROS, MAP_METHODS, Completions, complete, declared_maps

TRACEPOINTS = ("sched:sched_switch", "sched:sched_wakeup", "syscalls:sys_enter_openat", "syscalls:sys_exit_openat")
FIELDS = {"syscalls:sys_enter_openat": ["__syscall_nr", "dfd", "filename", "flags", "mode"]}

fake = functools.partial(
    complete,
    tracepoint_names=lambda: TRACEPOINTS,
    tracepoint_fields=lambda name: FIELDS.get(name, []),
)

MAPS = """\
BPF_HASH(counts, u32, u64);
BPF_ARRAY(totals, u64, 4);
BPF_PERF_OUTPUT(perf_events);
BPF_RINGBUF_OUTPUT(ring, 8);
BPF_STACK_TRACE(stacks, 1024);
BPF_QUEUE(queue, u32, 16);
BPF_PROG_ARRAY(jumps, 4);
BPF_DEVMAP(ports, 8);
BPF_TABLE("lru_hash", u32, u64, recent, 128);
"""


def test_declared_maps() -> None:
    assert declared_maps(MAPS) == {
        "counts": "hash", "totals": "array", "perf_events": "perf_output", "ring": "ringbuf",
        "stacks": "stack_trace", "queue": "queue", "jumps": "prog", "ports": "redirect", "recent": "hash",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("counts.", MAP_METHODS["hash"]),
        ("counts.inc", ("increment",)),
        ("totals.", ("atomic_increment", "increment", "lookup", "update")),
        ("perf_events.", ("perf_submit", "perf_submit_skb")),
        ("ring.ringbuf_", MAP_METHODS["ringbuf"]),
        ("stacks.", ("get_stackid",)),
        ("queue.p", ("peek", "pop", "push")),
        ("jumps.", ("call",)),
        ("ports.", ("redirect_map",)),
        ("recent.lookup", ("lookup", "lookup_or_try_init")),
    ],
)
def test_map_methods_follow_the_map_type(typed: str, expected: tuple[str, ...]) -> None:
    cell = MAPS + "int f(void *ctx) {\n    " + typed
    result = fake(cell)
    assert result.kind == "map method"
    assert result.matches == tuple(sorted(expected))
    prefix = typed.split(".")[1]
    assert (result.start, result.end) == (len(cell) - len(prefix), len(cell))


def test_cursor_in_the_middle_of_the_cell() -> None:
    cell = MAPS + "int f(void *ctx) { counts.upd(&k, &v); return 0; }"
    cursor = cell.index("upd") + 3
    assert fake(cell, cursor).matches == ("update",)


def test_members_of_things_that_are_not_maps_are_not_guessed() -> None:
    assert fake(MAPS + "struct data_t d; d.").matches == ()


def test_helpers_and_macros() -> None:
    result = fake("int f(void *ctx) { u64 t = bpf_ktime_get_")
    assert result.kind == "helper"
    assert result.matches == ("bpf_ktime_get_boot_ns", "bpf_ktime_get_coarse_ns", "bpf_ktime_get_ns", "bpf_ktime_get_tai_ns")
    assert "bpf_ringbuf_reserve" in fake("bpf_ringbuf_").matches
    assert fake("BPF_RING").matches == ("BPF_RINGBUF_OUTPUT",)
    assert set(fake("BPF_").matches) >= {"BPF_HASH", "BPF_ARRAY", "BPF_PERF_OUTPUT", "BPF_RINGBUF_OUTPUT"}
    assert fake("TRACE").matches == ("TRACEPOINT_PROBE",)
    assert {"KFUNC_PROBE", "KRETFUNC_PROBE", "RAW_TRACEPOINT_PROBE", "LSM_PROBE"} <= set(BCC_MACROS)
    # The cell's own map names complete too.
    assert fake(MAPS + "int f(void *ctx) { cou").matches == ("counts",)


def test_tracepoint_names_inside_tracepoint_probe() -> None:
    assert fake("TRACEPOINT_PROBE(").matches == ("sched", "syscalls")
    result = fake("TRACEPOINT_PROBE(sys")
    assert (result.kind, result.matches, result.start) == ("tracepoint category", ("syscalls",), 17)
    assert fake("TRACEPOINT_PROBE(syscalls, sys_e").matches == ("sys_enter_openat", "sys_exit_openat")
    assert fake("TRACEPOINT_PROBE(sched, ").matches == ("sched_switch", "sched_wakeup")
    assert fake("RAW_TRACEPOINT_PROBE(sched_w").matches == ("sched_wakeup",)


def test_fields_of_the_enclosing_tracepoint_after_args() -> None:
    cell = 'TRACEPOINT_PROBE(syscalls, sys_enter_openat) {\n    bpf_trace_printk("%s", args->f'
    result = fake(cell)
    assert (result.kind, result.matches) == ("tracepoint field", ("filename", "flags"))
    assert fake("int f(void *ctx) { args->").matches == ()


def test_nothing_to_complete() -> None:
    assert fake("") == Completions(0, 0)
    assert fake("x = 1 + ") == Completions(8, 8)
    assert "none" in repr(fake(""))


LIBBPF_CELL = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } seen SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
"""


@pytest.mark.parametrize(
    ("typed", "expected", "kind"),
    [
        ('SEC("tp_b', ("tp_btf",), "section"),
        ('SEC("cgroup/conn', ("cgroup/connect4", "cgroup/connect6"), "section"),
        ('SEC("tracepoint/sch', ("sched",), "tracepoint category"),
        ('SEC("tracepoint/syscalls/sys_enter_', ("sys_enter_openat",), "tracepoint"),
        ('SEC("tp_btf/sched_w', ("sched_wakeup",), "tracepoint"),
        ("u32 pid = BPF_CORE_READ_S", ("BPF_CORE_READ_STR_INTO",), "name"),
        ("int f() { return se", ("seen",), "name"),
    ],
)
def test_libbpf_cells_complete_sections_macros_and_maps(typed: str, expected: tuple[str, ...], kind: str) -> None:
    found = fake(LIBBPF_CELL + typed)
    assert found.matches == expected and found.kind == kind


def test_libbpf_maps_are_declared_maps() -> None:
    assert declared_maps(LIBBPF_CELL) == {"seen": "hash", "events": ""}


def test_bcc_cells_do_not_offer_libbpf_macros() -> None:
    assert "BPF_CORE_READ" not in fake("int f() { BPF_CO").matches
