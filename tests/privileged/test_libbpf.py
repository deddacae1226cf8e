"""libbpf (CO-RE) cells as users run them: kernel structs read right, the issue's example, the magic, test runs,
stats, the object cache, timers, explicit hooks, and nothing left in the kernel afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb import AttachError, CompileError, LoadError, Probe, Program
from bpfnb.engines import detect_engine
from bpfnb.engines.libbpf.vmlinux import bpftool_path
from bpfnb.packets.builder import tcp, udp

from ..libbpf_cells import COUNTER_CELL, FORK_CELL, HEADER, LICENSE
from .conftest import kernel_prog_ids, own_bpf_objects, run_workload

ME = os.getpid()
COMM = Path("/proc/self/comm").read_text().strip()[:15]


def bpftool_prog_names() -> set[str]:
    """Names of every BPF program in the kernel, as ``bpftool prog show`` lists them."""
    out = subprocess.run([bpftool_path(), "-j", "prog", "show"], capture_output=True, text=True, check=True).stdout
    return {p.get("name", "") for p in json.loads(out or "[]")}


def prog_ids(prog: Program) -> set[int]:
    return {int(i) for i in prog.stats()["prog_id"]}


def wait_until_gone(ids: set[int], seconds: float = 5.0) -> None:
    """The kernel frees a program after an RCU grace period: poll until none of ``ids`` is loaded."""
    deadline = time.monotonic() + seconds
    while ids & kernel_prog_ids():
        assert time.monotonic() < deadline, f"programs still loaded: {sorted(ids & kernel_prog_ids())}"
        time.sleep(0.02)


def fork_child() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


# ---------------------------------------------------------------- kernel structs, read right

TASK_CELL = HEADER + """
struct call { u32 ppid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
         __type(key, u32); __type(value, struct call); } calls SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(struct trace_event_raw_sys_enter *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    u32 tgid = BPF_CORE_READ(task, tgid);
    struct call c = {};
    c.ppid = BPF_CORE_READ(task, real_parent, tgid);
    BPF_CORE_READ_STR_INTO(&c.comm, task, comm);
    bpf_map_update_elem(&calls, &tgid, &c, BPF_ANY);
    return 0;
}
""" + LICENSE


def test_core_reads_of_task_struct_match_proc(no_leaks: None, workload: Path) -> None:
    with Program(TASK_CELL, name="task", first_line=2) as prog:
        os.getppid()
        child = run_workload(workload, 3)
        frame = prog["calls"].df().set_index("key")
    status = dict(line.split(":\t", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":\t" in line)
    assert int(status["Tgid"]) == ME
    assert frame.loc[ME, ["ppid", "comm"]].tolist() == [int(status["PPid"]), COMM]
    # The workload is this process's child: its real_parent is this process.
    assert frame.loc[child, ["ppid", "comm"]].tolist() == [ME, "workload"]


def test_the_issues_fork_cell_gives_parent_pid_and_comm(no_leaks: None) -> None:
    with Program(FORK_CELL, name="forks", first_line=2) as forks:
        assert forks.engine == "libbpf" and detect_engine(FORK_CELL) == "libbpf"
        assert FORK_CELL.startswith(HEADER)  # the cells of these tests start as the issue's does
        assert [(p.kind, p.target, p.function) for p in forks.attachments] == [
            ("section", "tp_btf/sched_process_fork", "on_fork")
        ]
        children = [fork_child() for _ in range(3)]
        frame = forks["seen"].df()
    assert list(frame.columns) == ["key", "ppid", "comm"]
    mine = frame[frame["key"].isin(children)].sort_values("key")
    assert mine.values.tolist() == [[child, ME, COMM] for child in sorted(children)]


# ---------------------------------------------------------------- the magic


@pytest.fixture
def shell(no_leaks: None) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("unload_ext", "bpfnb")
    InteractiveShell.clear_instance()


def test_magic_cell_is_built_by_libbpf(shell: InteractiveShell) -> None:
    result = shell.run_cell("%%bpf forks\n" + FORK_CELL)
    assert result.success
    forks = shell.user_ns["forks"]
    assert isinstance(forks, Program) and forks.engine == "libbpf" and result.result is forks
    child = fork_child()
    frame = shell.user_ns["forks"]["seen"].df()
    assert frame[frame["key"] == child][["ppid", "comm"]].values.tolist() == [[ME, COMM]]
    listing = shell.run_line_magic("bpf", "ls")
    assert [(row.name, row.kind, row.state) for row in listing.rows] == [("forks", "program (libbpf)", "attached")]
    assert "tp_btf/sched_process_fork" in repr(listing)

    # An error is shown at the cell's own line, and leaves the last good program alone.
    broken = shell.run_cell("%%bpf forks\n" + FORK_CELL.replace("BPF_ANY);", "BPF_ANY)"))
    assert not broken.success and isinstance(broken.error_in_exec, CompileError)
    assert broken.error_in_exec.line == 2 + FORK_CELL.splitlines().index("    bpf_map_update_elem(&seen, &pid, &i, BPF_ANY);")
    assert not forks.closed

    # Running the cell again replaces the program (from the object cache), leaving no trace of the first.
    first_ids = prog_ids(forks)
    assert shell.run_cell("%%bpf forks\n" + FORK_CELL).success
    again = shell.user_ns["forks"]
    assert forks.closed and not again.closed and again._loaded.cached
    wait_until_gone(first_ids)


# ---------------------------------------------------------------- running programs

XDP_CELL = HEADER + """#include <bpf/bpf_endian.h>
#define ETH_P_IP 0x0800
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2);
         __type(key, u32); __type(value, u64); } verdicts SEC(".maps");
SEC("xdp")
int drop_dns(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = (void *)(eth + 1);
    struct udphdr *udp = (void *)(ip + 1);
    u32 verdict = XDP_PASS;
    if ((void *)(udp + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IP) && ip->protocol == IPPROTO_UDP
        && udp->dest == bpf_htons(53))
        verdict = XDP_DROP;
    u32 slot = verdict == XDP_DROP;
    u64 *count = bpf_map_lookup_elem(&verdicts, &slot);
    if (count)
        __sync_fetch_and_add(count, 1);
    return verdict;
}
""" + LICENSE


def test_xdp_program_under_test_run(no_leaks: None) -> None:
    with Program(XDP_CELL, name="xdp", first_line=2) as prog:
        assert prog.state == "loaded, not attached"  # SEC("xdp") names no device
        dns = udp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=53, payload=b"query")
        run = prog.test_run("drop_dns", dns)
        assert (run.prog_type, run.retval, run.action) == ("xdp", 1, "XDP_DROP")
        other = prog.test_run("drop_dns", tcp(src="10.0.0.1", dst="10.0.0.2", sport=4000, dport=53), repeat=100)
        assert (other.retval, other.action, other.repeat) == (2, "XDP_PASS", 100)
        assert other.packet_out == other.packet_in and other.diff == []
        assert prog["verdicts"].df()["value"].tolist() == [100, 1]


def test_stats_count_runs(no_leaks: None, workload: Path) -> None:
    bpfnb.enable_stats()
    try:
        with Program(COUNTER_CELL, name="counter", first_line=2) as prog:
            run_workload(workload, 1000)
            stats = prog.stats()
    finally:
        bpfnb.disable_stats()
    assert stats.attrs["stats_enabled"]
    assert stats[["function", "kind"]].values.tolist() == [["count_getppid", "tracepoint/syscalls/sys_enter_getppid"]]
    assert stats["run_count"][0] >= 1000 and stats["run_time_ns"][0] > 0 and stats["verified_insns"][0] > 0


def test_an_unchanged_cell_comes_from_the_cache(no_leaks: None) -> None:
    # A source of its own, so that the first load really compiles.
    source = COUNTER_CELL + f"/* cache test {time.time_ns()} */\n"
    started = time.perf_counter()
    with Program(source, name="cold", first_line=2) as cold:
        cold_seconds = time.perf_counter() - started
        assert not cold._loaded.cached
    started = time.perf_counter()
    with Program(source, name="warm", first_line=2) as warm:
        warm_seconds = time.perf_counter() - started
        assert warm._loaded.cached
    assert warm_seconds < cold_seconds
    assert warm_seconds < 0.5  # the issue's goal is 0.1 s; this machine is shared


TIMER_CELL = HEADER + """
#define CLOCK_MONOTONIC 1  /* vmlinux.h has no macros */
struct elem { struct bpf_timer timer; };
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, struct elem); } timers SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, u64); } fired SEC(".maps");

static int on_timer(void *map, u32 *key, struct elem *value)
{
    u32 zero = 0;
    u64 *count = bpf_map_lookup_elem(&fired, &zero);
    if (count)
        __sync_fetch_and_add(count, 1);
    return 0;
}

SEC("xdp")
int arm_timer(struct xdp_md *ctx)
{
    u32 zero = 0;
    struct elem *e = bpf_map_lookup_elem(&timers, &zero);
    if (!e)
        return XDP_ABORTED;
    bpf_timer_init(&e->timer, &timers, CLOCK_MONOTONIC);
    bpf_timer_set_callback(&e->timer, on_timer);
    bpf_timer_start(&e->timer, 1000 /* ns */, 0);
    return XDP_PASS;
}
""" + LICENSE


def test_a_timer_armed_from_xdp_fires_its_callback(no_leaks: None) -> None:
    with Program(TIMER_CELL, name="timers", first_line=2) as prog:
        assert prog["timers"].value_type == "struct elem"
        assert prog.test_run("arm_timer", bytes(64)).action == "XDP_PASS"
        deadline = time.monotonic() + 5
        while prog["fired"][0] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert prog["fired"][0] > 0
        # Armed again, it fires again.
        before = prog["fired"][0]
        prog.test_run("arm_timer", bytes(64))
        while prog["fired"][0] == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert prog["fired"][0] > before


PROBES_CELL = HEADER + """
#define COUNTER(name) struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); \\
                               __type(key, u32); __type(value, u64); } name SEC(".maps")
COUNTER(tp_counts);
COUNTER(uprobe_counts);
COUNTER(tick_counts);
static __always_inline int count(void *counts)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *v = bpf_map_lookup_elem(counts, &pid);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(counts, &pid, &one, BPF_ANY);
    return 0;
}
SEC("tracepoint")
int on_tp(void *ctx) { return count(&tp_counts); }
SEC("uprobe")
int on_target(struct pt_regs *ctx) { return count(&uprobe_counts); }
SEC("perf_event")
int on_tick(struct bpf_perf_event_data *ctx) { return count(&tick_counts); }
""" + LICENSE


def test_explicit_hooks_attach_programs_whose_section_names_no_target(no_leaks: None, workload: Path) -> None:
    probes = [
        Probe("tracepoint", "syscalls:sys_enter_getppid", "on_tp"),
        Probe("uprobe", f"{workload}:bpfnb_target", "on_target"),
        Probe.parse("perf_event", "software:cpu-clock=on_tick,freq=99"),
    ]
    with Program(PROBES_CELL, name="hooks", first_line=2, probes=probes) as prog:
        assert [(p.kind, p.function) for p in prog.attachments] == [
            ("tracepoint", "on_tp"), ("uprobe", "on_target"), ("perf_event", "on_tick")
        ]  # fmt: skip
        pid = run_workload(workload, 1000)
        assert prog["tp_counts"][pid] == 1000
        assert prog["uprobe_counts"][pid] == 1000
        deadline = time.monotonic() + 5  # spin on a CPU until the 99 Hz clock samples this process
        while ME not in prog["tick_counts"] and time.monotonic() < deadline:
            pass
        assert prog["tick_counts"][ME] > 0
        assert "uprobe" in repr(prog) and f"{workload}:bpfnb_target" in repr(prog)


def test_engine_can_be_forced_on_a_cell_detection_gives_to_bcc(no_leaks: None) -> None:
    source = (
        "#include <linux/bpf.h>\n"
        '__attribute__((section("xdp"), used)) int pass_all(struct xdp_md *ctx) { return XDP_PASS; }\n'
        'char LICENSE[] __attribute__((section("license"), used)) = "GPL";\n'
    )
    assert detect_engine(source) == "bcc"
    with Program(source, name="forced", engine="libbpf", first_line=2) as prog:
        assert prog.engine == "libbpf"
        assert prog.test_run("pass_all", bytes(64)).action == "XDP_PASS"
    with pytest.raises(bpfnb.ArgumentError, match="engine must be one of bcc, libbpf"):
        Program(source, engine="llvm")


# ---------------------------------------------------------------- nothing left behind

LEAK_CELL = HEADER + """
SEC("tracepoint/syscalls/sys_enter_getppid")
int leakcheck_tp(void *ctx) { return 0; }
SEC("tp_btf/sched_process_fork")
int BPF_PROG(leakcheck_fork, struct task_struct *parent, struct task_struct *child) { return 0; }
SEC("xdp")
int leakcheck_xdp(struct xdp_md *ctx) { return XDP_PASS; }
""" + LICENSE
LEAK_NAMES = {"leakcheck_tp", "leakcheck_fork", "leakcheck_xdp"}


def test_detach_and_rerun_leave_nothing_loaded(no_leaks: None) -> None:
    before = own_bpf_objects()
    first = Program(LEAK_CELL, name="leaks", first_line=2)
    second = Program(LEAK_CELL, name="leaks", first_line=2)  # the cell run again
    first_ids, second_ids = prog_ids(first), prog_ids(second)
    assert len(first_ids) == len(second_ids) == 3 and not first_ids & second_ids
    assert LEAK_NAMES <= bpftool_prog_names()
    first.detach()
    wait_until_gone(first_ids)
    assert second_ids <= kernel_prog_ids()
    second.detach()
    second.detach()
    wait_until_gone(second_ids)
    assert own_bpf_objects() == before


def test_a_failed_load_or_attach_leaves_nothing(no_leaks: None) -> None:
    before = own_bpf_objects()
    # Its maps are made and two programs load before the verifier refuses the third.
    broken_verifier = LEAK_CELL.replace("int leakcheck_xdp(struct xdp_md *ctx) { return XDP_PASS; }",
                                        "int leakcheck_xdp(struct xdp_md *ctx) { return *(int *)(long)ctx->data; }")
    with pytest.raises(LoadError, match="verifier rejected program 'leakcheck_xdp'"):
        Program(broken_verifier, name="leaks", first_line=2)
    # The first programs load and attach, the last one cannot: all of it goes.
    half = LEAK_CELL + 'SEC("tracepoint/nope/nope")\nint leakcheck_nope(void *ctx) { return 0; }\n'
    with pytest.raises(AttachError, match="nope/nope"):
        Program(half, name="leaks", first_line=2)
    assert own_bpf_objects() == before


EXIT_SCRIPT = """
import os, signal, sys
import bpfnb
prog = bpfnb.Program(sys.argv[1], name="exiting", first_line=2)
print(" ".join(str(i) for i in prog.stats()["prog_id"]), flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_process_end_leaves_nothing_loaded(no_leaks: None, ending: str) -> None:
    done = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, LEAK_CELL, ending], capture_output=True, text=True)
    assert done.returncode == (-signal.SIGKILL if ending == "kill" else 0), done.stderr
    ids = {int(i) for i in done.stdout.split()}
    assert len(ids) == 3
    wait_until_gone(ids)
