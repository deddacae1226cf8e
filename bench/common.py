"""What the benchmarks share: the getppid workload, the same ring-buffer probe in both engines, timing helpers.

Workload: bench/getppid_loop.c, compiled here with cc, makes N getppid()
calls once released; a tracepoint on sys_enter_getppid sends one 24-byte
event per call of that process (its pid is set in the map ``target`` before
the workload starts).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfnb import Program  # noqa: E402
from bpfnb.kernel.libbpf import map_batch  # noqa: E402

T = TypeVar("T")

#: Pages of the ring buffer: 64 MiB, so that a whole 1M-event backlog fits.
RING_PAGES = 16384
FIELDS = ["ts", "pid", "cpu", "n"]

_BCC_PROBE = """
struct event { u64 ts; u32 pid; u32 cpu; u64 n; };
BPF_ARRAY(target, u32, 1);
@DECLARE@;
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    int zero = 0;
    u32 *pid = target.lookup(&zero);
    u64 id = bpf_get_current_pid_tgid();
    if (!pid || (id >> 32) != *pid) return 0;
    struct event e = {.ts = bpf_ktime_get_ns(), .pid = id >> 32, .cpu = bpf_get_smp_processor_id(), .n = 0};
    @OUTPUT@;
    return 0;
}
"""
#: A BCC cell sending one event per getppid() of the target to a ring buffer.
BCC_RING = _BCC_PROBE.replace("@DECLARE@", f"BPF_RINGBUF_OUTPUT(events, {RING_PAGES})").replace(
    "@OUTPUT@", "events.ringbuf_output(&e, sizeof(e), 0)"
)
#: The same to a perf buffer.
BCC_PERF = _BCC_PROBE.replace("@DECLARE@", "BPF_PERF_OUTPUT(events)").replace(
    "@OUTPUT@", "events.perf_submit(args, &e, sizeof(e))"
)
#: The same probe as :data:`BCC_RING`, as a libbpf (CO-RE) cell.
LIBBPF_RING = f"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct event {{ u64 ts; u32 pid; u32 cpu; u64 n; }};
struct {{ __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, u32); }} target SEC(".maps");
struct {{ __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, {RING_PAGES * 4096}); }} events SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) {{
    u32 zero = 0;
    u32 *pid = bpf_map_lookup_elem(&target, &zero);
    u64 id = bpf_get_current_pid_tgid();
    if (!pid || (id >> 32) != *pid) return 0;
    struct event e = {{.ts = bpf_ktime_get_ns(), .pid = id >> 32, .cpu = bpf_get_smp_processor_id(), .n = 0}};
    bpf_ringbuf_output(&events, &e, sizeof(e), 0);
    return 0;
}}
char LICENSE[] SEC("license") = "GPL";
"""
#: The ring-buffer probe of each engine.
RING = {"bcc": BCC_RING, "libbpf": LIBBPF_RING}


def build_workload(directory: str) -> str:
    """Compile bench/getppid_loop.c into ``directory``; return the binary's path."""
    binary = os.path.join(directory, "getppid_loop")
    source = Path(__file__).resolve().parent / "getppid_loop.c"
    subprocess.run(["cc", "-O2", "-o", binary, str(source)], check=True)
    return binary


class Workload:
    """The workload process, started paused and aimed at by ``program``'s probe; :meth:`go` releases it."""

    def __init__(self, binary: str, calls: int, program: Program) -> None:
        self.process = subprocess.Popen([binary, str(calls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        target = program["target"]
        target._io.update(np.zeros(1, target.layout.key), np.array([self.process.pid], target.layout.slot))
        self.started = 0.0

    def go(self) -> None:
        assert self.process.stdin is not None
        self.started = time.monotonic()
        self.process.stdin.write(b"x")
        self.process.stdin.close()

    def finish(self) -> tuple[float, float]:
        """Wait for the end: (seconds from go to exit, the loop's own seconds)."""
        assert self.process.stdout is not None
        out = self.process.stdout.read()
        self.process.wait()
        return time.monotonic() - self.started, int(out) / 1e9

    def exited(self) -> bool:
        return self.process.poll() is not None


def run_workload(binary: str, calls: int, program: Program) -> tuple[float, float]:
    """Run the workload to its end under ``program``; see :meth:`Workload.finish`."""
    work = Workload(binary, calls, program)
    work.go()
    return work.finish()


def thread_cpu_seconds(stream: Any) -> float:
    """CPU time the stream's consumer thread has used so far."""
    tid = stream._consumer.thread.native_id
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def timed(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median seconds of ``repeat`` calls, and the last result."""
    samples: list[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def load_average() -> str:
    """The 1-minute load average, to judge how noisy a run was on a shared machine."""
    return Path("/proc/loadavg").read_text().split()[0]


# -- streams -----------------------------------------------------------------------


def ring_live(binary: str, events: int, source: str) -> dict[str, Any]:
    """One pair of runs of ``events`` ring-buffer events: the workload alone, then consumed live.

    ``alone`` is the workload's time with the probe attached and nobody
    consuming, ``live`` the time from its start to the last event's arrival
    in a stream. Run as a pair, so that the ratio of the two compares runs a
    second apart on a machine whose load changes. Two parts of the difference
    that other processes' load hardly changes are measured too: ``tail``, how
    long after it was sent the last event arrived (its ``ts`` is
    ``bpf_ktime_get_ns()``, the clock of ``time.monotonic()``), and ``cpu``,
    the consumer thread's CPU time (which, on a busy machine, may be taken
    from the workload's CPU).
    """
    with Program(source) as prog:
        alone, loop = run_workload(binary, events, prog)
    with Program(source) as prog:
        stream = prog.stream("events", type="struct event")
        work = Workload(binary, events, prog)
        work.go()
        stream.wait(n=events, seconds=60)
        arrived = time.monotonic()
        cpu = thread_cpu_seconds(stream)
        work.finish()
        received, lost = stream.received, stream.lost
        tail = arrived - int(stream.df()["ts"].max()) / 1e9
        stream.stop()
    last = arrived - work.started
    return {"alone": alone, "loop": loop, "live": last, "ratio": last / alone, "received": received, "lost": lost,
            "cpu": cpu, "tail": tail}


def stream_backlog(binary: str, events: int, source: str) -> dict[str, float]:
    """``events`` already in a ring buffer to a DataFrame: seconds until all were taken, and until the frame."""
    with Program(source) as prog:
        run_workload(binary, events, prog)
        started = time.monotonic()
        stream = prog.stream("events", type="struct event")
        stream.wait(n=events, seconds=60)
        streamed = time.monotonic() - started
        frame = stream.df()
        total = time.monotonic() - started
        assert len(frame) == events and stream.lost == 0, (len(frame), events, stream.lost)
        stream.stop()
    return {"streamed": streamed, "frame": total}


# -- maps ----------------------------------------------------------------------------

#: The big hash's key and value, as C (both engines declare them alike).
HASH_TYPES = """
struct key_t { u32 pid; u32 cpu; char comm[16]; };
struct val_t { u64 count; u64 bytes; };
"""


def fill(view: Any, n: int) -> None:
    """Fill a map of key_t/val_t with ``n`` entries from user space, by batch update."""
    keys = np.zeros(n, view.layout.key)
    keys["pid"] = np.arange(n, dtype=np.uint32)
    keys["cpu"] = np.arange(n, dtype=np.uint32) % 2
    names = np.array([f"comm-{i}".encode() for i in range(100)], dtype="S16")
    keys["comm"] = names[np.arange(n) % 100]
    values = np.zeros(n, view.layout.value)
    values["count"] = np.arange(n)
    values["bytes"] = 2 * np.arange(n)
    view._io.update(keys, values)


def floor(view: Any) -> Callable[[], int]:
    """One batch lookup of the whole map into buffers allocated beforehand: the kernel's floor for ``.df()``."""
    n = view.max_entries
    keys, values = np.empty(n, view.layout.key), np.empty(n, view.layout.value)
    token = np.zeros(2, np.uint64)

    def lookup() -> int:
        got, _ = map_batch(
            "lookup", view.spec.fd, None, token.ctypes.data, keys.ctypes.data, values.ctypes.data, count=n
        )
        return int(got)

    return lookup


def same_rows(a: pd.DataFrame, b: pd.DataFrame, by: str) -> bool:
    """Whether two frames hold the same rows, whatever their order."""
    a, b = a.sort_values(by, ignore_index=True), b.sort_values(by, ignore_index=True)
    return list(a.columns) == list(b.columns) and all((a[c].to_numpy() == b[c].to_numpy()).all() for c in a.columns)
