"""Ring buffers and perf event arrays of libbpf cells: exact event counts, values, and counted losses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bpfnb import DecodeError, Program, Stream

from ..libbpf_cells import HEADER, LICENSE
from .conftest import run_workload

#: getppid() of the children of this test process (the workload binary) to a
#: ring buffer and to a perf event array, each event numbered. The event
#: struct is used only through local variables, as usual, so the object's BTF
#: does not have it: the engine must still find its layout.
EVENTS_CELL = HEADER + r"""
struct event { u32 pid; u32 ppid; u64 seq; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, RING_BYTES); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
         __uint(key_size, sizeof(u32)); __uint(value_size, sizeof(u32)); } perf SEC(".maps");
u64 ring_seq = 0, perf_seq = 0;

static __always_inline int fill(struct event *e, u64 *seq)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (BPF_CORE_READ(task, real_parent, tgid) != TARGET)
        return 0;
    e->pid = BPF_CORE_READ(task, tgid);
    e->ppid = TARGET;
    e->seq = __sync_fetch_and_add(seq, 1);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return 1;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int to_ring(void *ctx)
{
    struct task_struct *task = (struct task_struct *)bpf_get_current_task();
    if (BPF_CORE_READ(task, real_parent, tgid) != TARGET)
        return 0;
    struct event *e = bpf_ringbuf_reserve(&rb, sizeof(struct event), 0);
    if (!e)
        return 0;
    fill(e, &ring_seq);
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int to_perf(void *ctx)
{
    struct event e = {};
    if (fill(&e, &perf_seq))
        bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
""" + LICENSE

ME = os.getpid()


def events_program(ring_bytes: int) -> Program:
    return Program(EVENTS_CELL, name="events", first_line=2, cflags=[f"-DTARGET={ME}", f"-DRING_BYTES={ring_bytes}"])


def settle(stream: Stream, total: int, seconds: float = 10.0) -> None:
    """Wait until every one of ``total`` events is either received or counted lost."""
    deadline = time.monotonic() + seconds
    while stream.received + stream.lost < total and time.monotonic() < deadline:
        time.sleep(0.01)


def check_events(stream: Stream, pid: int, count: int) -> None:
    frame = stream.df().sort_values("seq", ignore_index=True)
    assert len(frame) == count
    assert frame["seq"].tolist() == list(range(count))
    assert (frame["pid"] == pid).all() and (frame["ppid"] == ME).all()
    assert set(frame["comm"]) == {"workload"}


def test_ring_and_perf_streams_deliver_exact_counts(no_leaks: None, workload: Path) -> None:
    calls = 3000
    with events_program(256 * 1024) as prog:
        ring, perf = prog.stream("rb"), prog.stream("perf", pages=64)
        pid = run_workload(workload, calls)
        for stream in (ring, perf):
            stream.wait(n=calls, seconds=20)
            check_events(stream, pid, calls)
            assert (len(stream), stream.received, stream.lost, stream.dropped) == (calls, calls, 0, 0)
        assert list(ring.df().columns) == ["time", "pid", "ppid", "seq", "comm"]
        assert list(perf.df().columns) == ["time", "cpu", "pid", "ppid", "seq", "comm"]
        # Another run continues the same streams.
        again = run_workload(workload, 500)
        ring.wait(n=calls + 500, seconds=20)
        assert ring.received == calls + 500 and ring.lost == 0
        assert (ring.df()["pid"] == again).sum() == 500
    assert ring.state == perf.state == "stopped"


def test_event_type_named_explicitly(no_leaks: None, workload: Path) -> None:
    with events_program(256 * 1024) as prog:
        stream = prog.stream("rb", type="struct event")
        pid = run_workload(workload, 100)
        stream.wait(n=100, seconds=20)
        check_events(stream, pid, 100)
        with pytest.raises(DecodeError, match="the program's BTF has no type 'struct nope'"):
            prog.stream("rb", type="struct nope")


def test_a_ring_buffer_too_small_counts_what_it_lost(no_leaks: None, workload: Path) -> None:
    # One page holds 128 records of 32 bytes; the workload makes its calls far
    # faster than a consumer wakes up, and each failed reserve is counted.
    calls = 5000
    with events_program(4096) as prog:
        stream = prog.stream("rb")
        pid = run_workload(workload, calls)
        settle(stream, calls)
        assert stream.lost > 0
        assert stream.received + stream.lost == calls
        frame = stream.df()
        assert len(frame) == stream.received and (frame["pid"] == pid).all()
        assert "lost" in stream._repr_html_()


def test_a_ring_buffer_of_a_cell_without_vmlinux_h_still_streams(no_leaks: None) -> None:
    # Only cells that include vmlinux.h get the loss-counting prelude. Here the
    # event type is in the object's BTF, through a global of that type.
    source = f"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct event {{ __u32 pid; }};
struct event last = {{}};
struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); }} rb SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int to_ring(void *ctx)
{{
    last.pid = bpf_get_current_pid_tgid() >> 32;
    if (last.pid == {ME})
        bpf_ringbuf_output(&rb, &last, sizeof(last), 0);
    return 0;
}}
char LICENSE[] SEC("license") = "GPL";
"""
    with Program(source, name="plain", first_line=2) as prog:
        assert prog.engine == "libbpf" and prog._loaded.loss_counter() is None
        stream = prog.stream("rb")
        for _ in range(10):
            os.getppid()
        stream.wait(n=10, seconds=10)
        assert stream.df()["pid"].tolist() == [ME] * 10
        assert stream.lost == 0


def test_streams_stop_with_the_program(no_leaks: None) -> None:
    prog = events_program(256 * 1024)
    ring, perf = prog.stream("rb"), prog.stream("perf", pages=8)
    assert ring in prog.resources and perf in prog.resources
    prog.detach()
    assert ring.state == perf.state == "stopped"
    with pytest.raises(Exception, match="detached"):
        prog.stream("rb")
