"""Every map type of a libbpf (CO-RE) cell to DataFrames, with columns from the object's BTF."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bpfnb import Program
from bpfnb.kernel.symbols import kernel_symbols

from ..libbpf_cells import COUNTER_CELL, HEADER, LICENSE
from .conftest import run_workload

ME = os.getpid()
COMM = Path("/proc/self/comm").read_text().strip()[:15]
CPUS = os.cpu_count() or 1

#: One map of each type. The tracepoint fills the first group (only for this
#: process, on the CPUs the test chooses), the XDP program, run once, the second.
MAPS_CELL = HEADER + r"""
enum phase_t { IDLE = 0, RUNNING = 1, SLEEPING = 2 };
struct point { u16 x; u16 y; };
struct task_key { u32 pid; char comm[16]; };
struct task_val { u64 count; struct point where; u32 samples[3]; enum phase_t state; char tag[8]; };
struct per_cpu { u64 n; u32 last_cpu; };
struct lpm_key { u32 prefixlen; u32 addr; };
typedef u64 stack_ips_t[127];

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
         __type(key, struct task_key); __type(value, struct task_val); } by_task SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2);
         __type(key, u32); __type(value, u64); } pcpu_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, struct per_cpu); } pcpu_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, u64); } lru_pcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 16384);
         __type(key, u32); __type(value, stack_ips_t); } stacks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, s32); } stack_of SEC(".maps");
u64 calls = 0;
u32 mult = 3;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u32 cpu = bpf_get_smp_processor_id();
    calls += mult;
    struct task_key k = { .pid = pid };
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    struct task_val zero = {}, *v = bpf_map_lookup_elem(&by_task, &k);
    if (!v) {
        bpf_map_update_elem(&by_task, &k, &zero, BPF_NOEXIST);
        v = bpf_map_lookup_elem(&by_task, &k);
        if (!v)
            return 0;
    }
    v->count++;
    v->where.x = 7; v->where.y = 9;
    v->samples[0] = 1; v->samples[1] = 2; v->samples[2] = 3;
    v->state = RUNNING;
    __builtin_memcpy(v->tag, "ok", 3);
    u32 one = 1;
    u64 *slot = bpf_map_lookup_elem(&pcpu_array, &one);
    if (slot)
        (*slot)++;
    struct per_cpu pz = {}, *p = bpf_map_lookup_elem(&pcpu_hash, &pid);
    if (!p) {
        bpf_map_update_elem(&pcpu_hash, &pid, &pz, BPF_NOEXIST);
        p = bpf_map_lookup_elem(&pcpu_hash, &pid);
    }
    if (p) { p->n++; p->last_cpu = cpu + 100; }
    u64 two = 2, *w = bpf_map_lookup_elem(&lru_pcpu, &pid);
    if (w) *w += 2; else bpf_map_update_elem(&lru_pcpu, &pid, &two, BPF_ANY);
    s32 id = bpf_get_stackid(ctx, &stacks, 0);
    bpf_map_update_elem(&stack_of, &pid, &id, BPF_ANY);
    return 0;
}

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, u32); __type(value, u64); } counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
         __type(key, u32); __type(value, u64); } slots SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 4);
         __type(key, u32); __type(value, u64); } recent SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16);
         __uint(map_flags, BPF_F_NO_PREALLOC);
         __type(key, struct lpm_key); __type(value, u64); } routes SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);
         __type(key, u32); __type(value, u32[2]); } pairs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 8); __type(value, u64); } fifo SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 8); __type(value, u64); } lifo SEC(".maps");

SEC("xdp")
int fill(struct xdp_md *ctx)
{
    for (u32 i = 0; i < 3; i++) {
        u64 value = 10 * (i + 1);
        bpf_map_update_elem(&counts, &i, &value, BPF_ANY);
        bpf_map_update_elem(&slots, &i, &value, BPF_ANY);
        bpf_map_push_elem(&fifo, &value, 0);
        bpf_map_push_elem(&lifo, &value, 0);
    }
    for (u32 i = 0; i < 10; i++) {
        u64 value = 10 * i;
        bpf_map_update_elem(&recent, &i, &value, BPF_ANY);
    }
    u32 key = 5, pair[2] = { 50, 51 };
    bpf_map_update_elem(&pairs, &key, pair, BPF_ANY);
    /* 10.0.0.0/8, 10.1.2.0/24 and 10.1.2.3/32, addresses in network order. */
    struct lpm_key a = { 8, 0x0000000a }, b = { 24, 0x0002010a }, c = { 32, 0x0302010a };
    u64 one = 1, two = 2, three = 3;
    bpf_map_update_elem(&routes, &a, &one, BPF_ANY);
    bpf_map_update_elem(&routes, &b, &two, BPF_ANY);
    bpf_map_update_elem(&routes, &c, &three, BPF_ANY);
    return XDP_PASS;
}
""" + LICENSE


def getppid_on(cpu: int, times: int) -> None:
    """Make ``times`` getppid() calls from this process, on one CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        for _ in range(times):
            os.getppid()
    finally:
        os.sched_setaffinity(0, before)


@pytest.fixture
def maps(no_leaks: None) -> Iterator[Program]:
    """MAPS_CELL loaded and attached; 3 getppid() calls made on CPU 0 and 5 on CPU 1, and ``fill`` run once."""
    with Program(MAPS_CELL, name="maps", first_line=2, cflags=[f"-DTARGET={ME}"]) as prog:
        getppid_on(0, 3)
        getppid_on(1 % CPUS, 5)
        assert prog.test_run("fill", bytes(64)).action == "XDP_PASS"
        yield prog


def test_every_map_is_listed_with_its_c_types(maps: Program) -> None:
    described = {name: (view.map_type, view.key_type, view.value_type) for name, view in maps.maps.items()}
    assert described == {
        "by_task": ("hash", "struct task_key", "struct task_val"),
        "pcpu_array": ("percpu_array", "u32", "u64"),
        "pcpu_hash": ("percpu_hash", "u32", "struct per_cpu"),
        "lru_pcpu": ("lru_percpu_hash", "u32", "u64"),
        "stacks": ("stack_trace", "u32", "u64[127]"),
        "stack_of": ("hash", "u32", "s32"),
        "counts": ("hash", "u32", "u64"),
        "slots": ("array", "u32", "u64"),
        "recent": ("lru_hash", "u32", "u64"),
        "routes": ("lpm_trie", "struct lpm_key", "u64"),
        "pairs": ("hash", "u32", "u32[2]"),
        "fifo": ("queue", "none", "u64"),
        "lifo": ("stack", "none", "u64"),
        # Globals: libbpf's maps "<object name>.<section>"; string literals get one of their own.
        "maps.bss": ("array", "u32", "struct .bss"),
        "maps.data": ("array", "u32", "struct .data"),
        ".rodata.str1.1": ("array", "u32", "u8[3]"),
    }
    assert maps.engine == "libbpf" and maps.functions == ["on_getppid", "fill"]
    assert "map by_task: hash struct task_key -> struct task_val, 1 entries" in repr(maps)


def test_struct_key_and_value_with_nested_struct_array_enum_and_chars(maps: Program) -> None:
    view = maps["by_task"]
    frame = view.df()
    assert list(frame.columns) == [
        "pid", "comm", "count", "where.x", "where.y", "samples", "state", "state_raw", "tag"
    ]  # fmt: skip
    assert frame.drop(columns=["samples", "state", "state_raw"]).values.tolist() == [[ME, COMM, 8, 7, 9, "ok"]]
    assert frame["samples"][0].tolist() == [1, 2, 3]
    assert len(view) == 1 and view[(ME, COMM.encode())]["count"] == 8
    # The engine names the enum's values; a decoder of the user's own takes precedence.
    assert view.spec.enums == {"state": {0: "IDLE", 1: "RUNNING", 2: "SLEEPING"}}
    mine = view.df(decode={"state": {1: "busy"}})
    assert mine["state"].tolist() == ["busy"] and mine["state_raw"].tolist() == [1]


def test_enum_fields_show_their_names_by_default(maps: Program) -> None:
    frame = maps["by_task"].df()
    assert frame["state"].tolist() == ["RUNNING"]
    assert frame["state_raw"].tolist() == [1]


@pytest.mark.skipif(CPUS < 2, reason="needs two CPUs")
def test_per_cpu_maps_sum_columns_and_rows(maps: Program) -> None:
    pcpu_array, pcpu_hash, lru_pcpu = maps["pcpu_array"], maps["pcpu_hash"], maps["lru_pcpu"]
    assert pcpu_array.df()["value"].tolist() == [0, 8]
    columns = pcpu_array.df(percpu="columns")
    assert list(columns.columns[:3]) == ["key", "value.cpu0", "value.cpu1"]
    assert columns.iloc[1][["value.cpu0", "value.cpu1"]].tolist() == [3, 5]
    rows = pcpu_array.df(percpu="rows")
    assert rows[(rows["key"] == 1) & (rows["cpu"] < 2)][["cpu", "value"]].values.tolist() == [[0, 3], [1, 5]]
    assert pcpu_hash.df()[["key", "n"]].values.tolist() == [[ME, 8]]
    assert pcpu_hash.df(percpu="columns")[["last_cpu.cpu0", "last_cpu.cpu1"]].values.tolist() == [[100, 101]]
    assert lru_pcpu.df().values.tolist() == [[ME, 16]]
    assert pcpu_array[1][:2] == [3, 5]


def test_hash_array_lru_and_lpm_trie(maps: Program) -> None:
    assert maps["counts"].df().sort_values("key").values.tolist() == [[0, 10], [1, 20], [2, 30]]
    assert maps["counts"][1] == 20 and len(maps["counts"]) == 3
    assert maps["slots"].df().values.tolist() == [[0, 10], [1, 20], [2, 30], [3, 0]]
    recent = maps["recent"].df()
    assert 0 < len(recent) <= 4 and (recent["value"] == recent["key"] * 10).all()
    routes = maps["routes"].df(decode={"addr": "ipv4"}).sort_values("prefixlen", ignore_index=True)
    assert routes[["prefixlen", "addr", "value"]].values.tolist() == [
        [8, "10.0.0.0", 1],
        [24, "10.1.2.0", 2],
        [32, "10.1.2.3", 3],
    ]


def test_queue_and_stack_read_without_consuming(maps: Program) -> None:
    fifo, lifo = maps["fifo"], maps["lifo"]
    assert fifo.df()["value"].tolist() == [10, 20, 30] == fifo.df()["value"].tolist()
    assert lifo.df()["value"].tolist() == [30, 20, 10]
    assert len(fifo) == 3 and fifo.peek() == 10 and lifo.peek() == 30
    assert fifo.df(consume=True)["value"].tolist() == [10, 20, 30]
    assert len(fifo) == 0 and fifo.peek() is None


def test_stack_traces_are_symbolized(maps: Program) -> None:
    stacks = maps["stacks"]
    stack_id = maps["stack_of"][ME]
    frame = stacks.df().set_index("stack_id")
    frames = frame.loc[stack_id, "frames"]
    kernel_names = set(kernel_symbols().names_.tolist())
    assert frames and all(name in kernel_names for name in frames)
    assert "do_syscall_64" in frames
    assert frame.loc[stack_id, "folded"].endswith(";".join(reversed(frames))[-40:])
    assert stacks.frames(stack_id) == frames
    assert np.asarray(stacks[stack_id]).shape == (127,)


def test_global_variables_are_maps_of_their_sections(maps: Program) -> None:
    assert maps["maps.bss"].df().values.tolist() == [[0, 24]]  # 8 calls, 3 each
    assert maps["maps.data"].df()[["mult"]].values.tolist() == [[3]]


def test_array_values_stay_arrays(maps: Program) -> None:
    frame = maps["pairs"].df()
    assert frame["key"].tolist() == [5]
    assert frame["value"][0].tolist() == [50, 51]


def test_history_and_live_of_a_libbpf_map(no_leaks: None, workload: Path) -> None:
    with Program(COUNTER_CELL, name="counter", first_line=2) as prog:
        recorder = prog["counts"].history(interval=600)
        deadline = time.monotonic() + 5
        while recorder.snapshots < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = run_workload(workload, 250)
        latest = recorder.record()
        mine = latest[latest["key"] == pid]
        assert mine[["value", "delta"]].values.tolist() == [[250, 250.0]]
        assert list(latest.columns) == ["time", "key", "value", "delta", "rate"]

        widget = prog["counts"].live(kind="bar", interval=0.2, top=1000)
        assert widget in prog.resources and recorder in prog.resources
        other = run_workload(workload, 120)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            rows = widget.data[widget.data["label"] == str(other)]
            if len(rows) and float(rows["value"].iloc[0]) == 120:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the workload's 120 calls never reached the live plot")
    assert not widget.running and not recorder.running
