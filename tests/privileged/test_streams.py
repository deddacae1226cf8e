"""Streams of real events from real programs: counts, values, loss, retention, lifecycle."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from bpfnb import BpfnbError, Program
from bpfnb.engines.bcc.prelude import LOST_MAP
from bpfnb.streams.decoding import rows_frame

from .conftest import kernel_prog_ids, own_bpf_objects

#: Every test program reacts only to getppid() calls of this test process.
FILTER = [f"-DTARGET_TGID={os.getpid()}"]

EVENT = """
struct event { u32 pid; u64 seq; u64 ts; char comm[16]; u8 flag; };
BPF_ARRAY(sequence, u64, 1);
static __always_inline int fill(struct event *e) {
    u64 id = bpf_get_current_pid_tgid();
    if ((id >> 32) != TARGET_TGID) return 0;
    int zero = 0;
    u64 *seq = sequence.lookup(&zero);
    if (!seq) return 0;
    e->pid = id >> 32;
    e->seq = __sync_fetch_and_add(seq, 1);
    e->ts = bpf_ktime_get_ns();
    e->flag = 0xAB;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    return 1;
}
"""

RING = (
    EVENT
    + """
BPF_RINGBUF_OUTPUT(events, PAGES);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    for (int i = 0; i < BURST; i++) {
        struct event e = {};
        if (!fill(&e)) return 0;
        events.ringbuf_output(&e, sizeof(e), 0);
    }
    return 0;
}
"""
)

PERF = (
    EVENT
    + """
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    for (int i = 0; i < BURST; i++) {
        struct event e = {};
        if (!fill(&e)) return 0;
        events.perf_submit(args, &e, sizeof(e));
    }
    return 0;
}
"""
)


def program(source: str, *, pages: int = 256, burst: int = 1) -> Program:
    return Program(source, cflags=FILTER + [f"-DPAGES={pages}", f"-DBURST={burst}"])


def emit(calls: int) -> None:
    # getppid() keeps the GIL: the consumer thread only runs between these calls'
    # time slices, so the buffers here are sized to hold a whole emit().
    for _ in range(calls):
        os.getppid()


def stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bpfnb stream")]


def check_events(frame: pd.DataFrame, count: int, *, first: int = 0) -> None:
    assert len(frame) == count
    assert frame["seq"].tolist() == list(range(first, first + count))
    assert (frame["pid"] == os.getpid()).all()
    assert (frame["flag"] == 0xAB).all()
    assert set(frame["comm"]) == {Path("/proc/self/comm").read_text().strip()}
    assert frame["time"].is_monotonic_increasing


def test_ring_buffer_delivers_every_event_decoded(no_leaks):
    with program(RING) as prog:
        stream = prog.stream("events")
        emit(5000)
        stream.wait(n=5000, seconds=30)
        frame = stream.df()
        assert list(frame.columns) == ["time", "pid", "seq", "ts", "comm", "flag"]
        check_events(frame, 5000)
        assert (len(stream), stream.received, stream.lost, stream.dropped) == (5000, 5000, 0, 0)
        assert frame["time"].dt.tz is not None
    assert stream.state == "stopped"


def test_ring_buffer_wraps_around_many_times(no_leaks):
    # 2 pages hold 146 records of 56 bytes: 40 rounds of 100 wrap them about 30 times.
    with program(RING, pages=2, burst=100) as prog:
        stream = prog.stream("events")
        for round_ in range(40):
            emit(1)
            stream.wait(n=100 * (round_ + 1), seconds=2)
        check_events(stream.df(), 4000)
        assert stream.lost == 0


def test_perf_buffer_delivers_every_event_with_cpu(no_leaks):
    with program(PERF) as prog:
        stream = prog.stream("events", pages=256)
        emit(5000)
        stream.wait(n=5000, seconds=30)
        frame = stream.df()
        assert list(frame.columns) == ["time", "cpu", "pid", "seq", "ts", "comm", "flag"]
        frame = frame.sort_values("seq", ignore_index=True)
        check_events(frame.assign(time=frame["time"].sort_values(ignore_index=True)), 5000)
        assert set(frame["cpu"]) <= set(range(os.cpu_count() or 1))
        assert (stream.lost, stream.dropped) == (0, 0)


def test_perf_buffer_counts_kernel_losses_exactly(no_leaks):
    source = PERF.replace("BPF_PERF_OUTPUT(events);", "BPF_PERF_OUTPUT(events); BPF_ARRAY(burst, u32, 1);").replace(
        "for (int i = 0; i < BURST; i++) {",
        "int zero = 0; u32 *n = burst.lookup(&zero); for (int i = 0; n && i < *n && i < 4096; i++) {",
    )
    with program(source) as prog:
        burst = prog.bpf.get_table(b"burst")
        burst[burst.Key(0)] = burst.Leaf(2000)
        # One page per CPU holds 63 records of 64 bytes: a burst of 2000 overflows it.
        stream = prog.stream("events", pages=1)
        emit(1)
        stream.wait(n=63, seconds=10)
        # The kernel writes its PERF_RECORD_LOST with the next record that fits.
        burst[burst.Key(0)] = burst.Leaf(1)
        emit(1)
        deadline = time.monotonic() + 10
        while stream.received + stream.lost < 2001 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream.lost > 0
        assert stream.received + stream.lost == 2001
        assert "lost" in stream._repr_html_()


def test_ring_buffer_counts_kernel_losses_exactly(no_leaks):
    with program(RING, pages=1, burst=2000) as prog:
        stream = prog.stream("events")
        emit(1)
        stream.wait(seconds=0.5)
        assert stream.lost > 0
        assert stream.received + stream.lost == 2000
        # The rows that arrived are the first ones, in order.
        check_events(stream.df(), stream.received)


def test_no_stream_drops_without_blocking_and_counts(no_leaks):
    with program(RING, pages=1) as prog:
        emit(1000)  # nobody consumes: 73 records of 56 bytes fit in one page, the rest are dropped
        lost = prog.bpf.get_table(LOST_MAP.encode())
        assert sum(lost[lost.Key(0)]) == 1000 - 73
        stream = prog.stream("events")
        stream.wait(n=73, seconds=10)
        check_events(stream.df(), 73)
        assert stream.lost == 0  # losses before the stream opened are not its own


def test_retention_by_rows_and_by_bytes(no_leaks):
    with program(RING) as prog:
        by_rows = prog.stream("events", max_rows=300)
        emit(1000)
        by_rows.wait(n=1000, seconds=30)
        check_events(by_rows.df(), 300, first=700)
        assert (len(by_rows), by_rows.received, by_rows.dropped, by_rows.lost) == (300, 1000, 700, 0)
        by_rows.stop()
        itemsize = 48  # struct event: 4 + pad 4 + 8 + 8 + 16 + 1 + pad 7
        by_bytes = prog.stream("events", max_bytes=250 * itemsize)
        emit(1000)
        by_bytes.wait(n=1000, seconds=30)
        check_events(by_bytes.df(), 250, first=1750)
        assert by_bytes.dropped == 750


def test_take_rows_hands_rows_on_and_lingers_only_while_events_come(no_leaks):
    with program(RING) as prog:
        stream = prog.stream("events", max_rows=300)
        started = time.monotonic()
        assert len(stream.take_rows(wait=0.3)) == 0 and time.monotonic() - started >= 0.25  # nothing came
        emit(1000)
        stream.wait(n=1000, seconds=30)
        first = stream.take_rows(200)  # as many as asked, at once: the rest stays
        assert (len(first), len(stream)) == (200, 100) and stream.dropped == 700
        started = time.monotonic()
        rest = stream.take_rows(1000, wait=5, linger=5, pause=0.01)  # no event comes: no lingering
        assert len(rest) == 100 and time.monotonic() - started < 2.5
        assert len(stream) == 0 and stream.received == 1000
        frame = rows_frame([first, rest], stream.dtype)
        check_events(frame, 300, first=700)
        assert frame.equals(pd.concat([rows_frame([first], stream.dtype), rows_frame([rest], stream.dtype)],
                                      ignore_index=True))
        # Events that keep coming are waited for: one take gets a whole burst of 20 emits.
        emitter = threading.Thread(target=lambda: [(emit(10), time.sleep(0.02)) for _ in range(20)])
        emitter.start()
        burst = stream.take_rows(1000, wait=5, linger=20, pause=1.0)
        emitter.join()
        assert len(burst) == 200 and len(stream) == 0
        check_events(rows_frame([burst], stream.dtype), 200, first=1000)


MIXED = (
    EVENT
    + """
BPF_RINGBUF_OUTPUT(events, 16);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct event e = {};
    if (!fill(&e)) return 0;
    events.ringbuf_output(&e, sizeof(e), 0);                    /* whole */
    e.seq += 1000;
    events.ringbuf_output(&e, offsetof(struct event, ts), 0);   /* prefix: pid, seq */
    struct event *r = events.ringbuf_reserve(sizeof(struct event));
    if (r) { r->seq = 999999; events.ringbuf_discard(r, 0); }  /* never seen */
    r = events.ringbuf_reserve(sizeof(struct event));
    if (r) { *r = e; r->seq += 1000; events.ringbuf_submit(r, 0); }
    return 0;
}
"""
)


def test_mixed_record_sizes_and_discards(no_leaks):
    with Program(MIXED, cflags=FILTER) as prog:
        stream = prog.stream("events")
        emit(300)
        stream.wait(n=900, seconds=30)
        frame = stream.df()
        assert stream.received == 900
        whole, prefix, reserved = (frame.iloc[i::3].reset_index(drop=True) for i in range(3))
        check_events(whole, 300)
        assert (prefix["seq"] == whole["seq"] + 1000).all()
        assert (prefix["pid"] == os.getpid()).all()
        assert (prefix["ts"] == 0).all() and (prefix["comm"] == "").all() and (prefix["flag"] == 0).all()
        assert (reserved["seq"] == whole["seq"] + 2000).all()
        assert (reserved["ts"] == whole["ts"]).all()
        assert 999999 not in set(frame["seq"])
        assert stream._consumer.reader.discarded == 300


def test_time_field_converts_to_wall_clock(no_leaks):
    with program(RING) as prog:
        stream = prog.stream("events", time_field="ts")
        before = pd.Timestamp.now(tz="UTC")
        emit(1)
        time.sleep(0.3)
        emit(1)
        after = pd.Timestamp.now(tz="UTC")
        stream.wait(n=2, seconds=10)
        times = stream.df()["time"]
        slack = pd.Timedelta(milliseconds=5)
        assert before - slack <= times[0] and times[1] <= after + slack
        assert pd.Timedelta(milliseconds=300) - slack <= times[1] - times[0] <= after - before + slack


def test_parquet_capture_and_on_batch(tmp_path, no_leaks):
    capture = tmp_path / "capture.parquet"
    batches: list[pd.DataFrame] = []
    with program(PERF) as prog:
        stream = prog.stream("events", parquet=capture, on_batch=batches.append, max_rows=100)

        @stream.on_batch
        def broken(frame: pd.DataFrame) -> None:
            raise ValueError("user code fails")

        emit(2000)
        stream.wait(n=2000, seconds=30)
        stream.stop()
        stream.to_parquet(tmp_path / "held.parquet")
    everything = pd.concat(batches, ignore_index=True)
    assert len(everything) == 2000 and sorted(everything["seq"]) == list(range(2000))
    assert stream.callback_errors == len(batches) and isinstance(stream.last_error, ValueError)
    captured = pq.read_table(capture).to_pandas()
    pd.testing.assert_frame_equal(captured, everything, check_dtype=False)
    held = pd.read_parquet(tmp_path / "held.parquet")
    assert len(held) == 100
    pd.testing.assert_frame_equal(held, stream.df(), check_dtype=False)


def test_wait_returns_on_interrupt_and_stream_goes_on(no_leaks):
    with program(RING) as prog:
        stream = prog.stream("events")
        main = threading.get_ident()
        timer = threading.Timer(0.2, signal.pthread_kill, (main, signal.SIGINT))
        timer.start()
        started = time.monotonic()
        assert stream.wait(seconds=60) is stream
        assert time.monotonic() - started < 30
        assert stream.running
        emit(10)
        stream.wait(n=10, seconds=10)
        check_events(stream.df(), 10)


def test_stop_and_detach_release_threads_and_fds(no_leaks):
    with program(PERF) as prog:
        fds_before = own_bpf_objects()  # the tracepoint's attachment is a perf event too
        ring = prog.stream("events")
        assert len(stream_threads()) == 1
        assert own_bpf_objects()["perf_event"] == fds_before["perf_event"] + len(ring._consumer.reader.rings)
        ring.stop()
        ring.stop()
        assert stream_threads() == [] and ring.state == "stopped"
        assert own_bpf_objects()["perf_event"] == fds_before["perf_event"]
        again = prog.stream("events")  # the map is free again
        emit(3)
        again.wait(n=3, seconds=10)
    assert again.state == "stopped" and stream_threads() == []
    assert len(again) == 3  # rows stay readable after the program is gone
    assert "stopped" in repr(again) and "stopped" in again._repr_html_()


def test_bad_requests_are_explained(no_leaks):
    with program(RING) as prog:
        with pytest.raises(BpfnbError, match="not a ring or perf buffer"):
            prog.stream("sequence")
        with pytest.raises(BpfnbError, match="no map"):
            prog.stream("nope")
        first = prog.stream("events")
        with pytest.raises(BpfnbError, match="already being streamed"):
            prog.stream("events")
        with pytest.raises(BpfnbError, match="time_field"):
            prog.stream("events", time_field="when")
        first.stop()
    with pytest.raises(BpfnbError, match="detached"):
        prog.stream("events")


def test_interpreter_exit_with_a_running_stream(tmp_path):
    before = kernel_prog_ids()
    script = textwrap.dedent(
        f"""
        import os, bpfnb
        prog = bpfnb.Program({RING!r}, cflags=["-DTARGET_TGID=%d" % os.getpid(), "-DPAGES=8", "-DBURST=1"])
        stream = prog.stream("events")
        for _ in range(100):
            os.getppid()
        stream.wait(n=100, seconds=10)
        print(len(stream), flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "100"
    deadline = time.monotonic() + 3
    while kernel_prog_ids() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not kernel_prog_ids() - before


def test_numpy_records_are_copies_not_views_of_the_buffer(no_leaks):
    with program(RING, pages=2, burst=100) as prog:
        stream = prog.stream("events")
        emit(1)
        stream.wait(n=100, seconds=10)
        first = stream.df()
        for round_ in range(5):  # overwrite the buffer several times over
            emit(1)
            stream.wait(n=200 + 100 * round_, seconds=10)
        pd.testing.assert_frame_equal(stream.df().iloc[:100], first)
        assert np.array_equal(first["seq"], np.arange(100))


NESTED = """
struct inner { u16 a; u8 b; };
typedef struct { u32 x; } pair_t;
enum color { RED, GREEN, BLUE };
struct __attribute__((packed)) packed_t { u8 a; u32 b; };
struct event {
    u32 pid; struct inner in; pair_t an; enum color c; union { u32 i; float f; } u;
    unsigned int bits:3, more:5; int arr[2][3]; struct packed_t pk; char comm[16];
};
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID) return 0;
    struct event e = {};
    e.pid = 7; e.in.a = 11; e.in.b = 12; e.an.x = 13; e.c = BLUE; e.u.i = 14;
    e.bits = 5; e.more = 17; e.arr[1][2] = 18; e.pk.a = 19; e.pk.b = 20;
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


def test_nested_structs_unions_and_bitfields_decode(no_leaks):
    with Program(NESTED, cflags=FILTER) as prog:
        stream = prog.stream("events")
        emit(2)
        stream.wait(n=2, seconds=10)
        row = stream.df().iloc[1]
    assert (row["pid"], row["in.a"], row["in.b"], row["an.x"], row["c"], row["u.i"]) == (7, 11, 12, 13, 2, 14)
    assert (row["bits"], row["more"], row["pk.a"], row["pk.b"]) == (5, 17, 19, 20)
    assert row["arr"].tolist() == [[0, 0, 0], [0, 0, 18]]
    assert row["comm"] == Path("/proc/self/comm").read_text().strip()


def test_stop_from_an_on_batch_function(no_leaks):
    with program(RING) as prog:
        fds_before = own_bpf_objects()
        stream = prog.stream("events")
        stream.on_batch(lambda frame: stream.stop())
        emit(5)
        stream.wait(seconds=10)
        assert stream.state == "stopped"
        deadline = time.monotonic() + 5
        while stream_threads() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stream_threads() == [] and own_bpf_objects() == fds_before
        assert len(stream) == 5


def test_loss_counting_keeps_long_output_loops_verifiable(no_leaks):
    # The verifier walks every iteration: the counting wrapper must not multiply its work.
    source = """
    struct event { u32 pid; u32 seq; u64 ts; };
    BPF_RINGBUF_OUTPUT(events, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
        if ((bpf_get_current_pid_tgid() >> 32) != TARGET_TGID) return 0;
        for (u32 i = 0; i < 1000; i++) {
            struct event e = {.pid = TARGET_TGID, .seq = i, .ts = bpf_ktime_get_ns()};
            events.ringbuf_output(&e, sizeof(e), 0);
            struct event *r = events.ringbuf_reserve(sizeof(struct event));
            if (r) { *r = e; events.ringbuf_submit(r, 0); }
        }
        return 0;
    }
    """
    with Program(source, cflags=FILTER) as prog:
        emit(1)  # nobody consumes: 170 records of 24 bytes fit in a page
        lost = prog.bpf.get_table(LOST_MAP.encode())
        assert sum(lost[lost.Key(0)]) == 2000 - 170
