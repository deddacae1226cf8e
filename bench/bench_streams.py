"""Event streams against BCC's callback consumers, side by side in one run.

Run as root from the repository: ``.venv/bin/python bench/bench_streams.py``
(``--events N`` changes the 1M events, ``--flood N`` the 10M of the memory test,
``--repeat R`` the repetitions of the ring-buffer runs; medians are shown).

Workload and probe: those of bench/common.py (N getppid() calls, one 24-byte
event each).

- ring buffer, live: time from the workload's start to the last event's
  arrival in the stream, against the workload's own time with the same probe
  attached and nobody consuming, measured in pairs (goal <= 1.10x);
- ring buffer, backlog: N events already in the buffer to a DataFrame, against
  BCC's open_ring_buffer callback draining the same backlog (goal >= 10x);
- perf buffer, live: events/s received by a stream (default size) and by BCC's
  open_perf_buffer callback (its default size), with the losses (goal >= 3x);
- consumer CPU time per million events; peak RSS under a 10M-event flood
  with the default retention.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import pandas as pd
from common import (
    BCC_PERF,
    BCC_RING,
    FIELDS,
    Workload,
    build_workload,
    ring_live,
    run_workload,
    stream_backlog,
    thread_cpu_seconds,
)

from bpfnb import Program
from bpfnb.streams.perfbuf import default_pages


def ring_backlog(binary: str, events: int) -> dict:
    ours = stream_backlog(binary, events, BCC_RING)
    with Program(BCC_RING) as prog:
        run_workload(binary, events, prog)
        table = prog.bpf[b"events"]
        rows = []

        def callback(ctx, data, size):
            event = table.event(data)
            rows.append((event.ts, event.pid, event.cpu, event.n))

        started = time.monotonic()
        table.open_ring_buffer(callback)
        prog.bpf.ring_buffer_consume()
        drained = time.monotonic() - started
        frame = pd.DataFrame(rows, columns=FIELDS)
        bcc = time.monotonic() - started
        assert len(frame) == events, (len(frame), events)
    return {"streamed": ours["streamed"], "ours": ours["frame"], "bcc_drain": drained, "bcc": bcc}


def perf_live(binary: str, events: int) -> dict:
    with Program(BCC_PERF) as prog:
        stream = prog.stream("events")
        work = Workload(binary, events, prog)
        work.go()
        last, seen = time.monotonic(), 0
        while stream.received + stream.lost < events and not (work.exited() and time.monotonic() - last > 1):
            stream.wait(n=min(seen + 1, events), seconds=0.2)
            if stream.received > seen:
                seen, last = stream.received, time.monotonic()
        cpu = thread_cpu_seconds(stream)
        work.finish()
        ours = {"received": stream.received, "lost": stream.lost, "seconds": last - work.started, "cpu": cpu}
        stream.stop()
    with Program(BCC_PERF) as prog:
        table = prog.bpf[b"events"]
        rows = []
        lost = [0]

        def callback(cpu, data, size):
            event = table.event(data)
            rows.append((event.ts, event.pid, event.cpu, event.n))

        def on_lost(count):
            lost[0] += count

        table.open_perf_buffer(callback, lost_cb=on_lost)
        work = Workload(binary, events, prog)
        work.go()
        last, seen = time.monotonic(), 0
        while len(rows) + lost[0] < events and not (work.exited() and time.monotonic() - last > 1):
            prog.bpf.perf_buffer_poll(timeout=100)
            if len(rows) > seen:
                seen, last = len(rows), time.monotonic()
        work.finish()
        for cpu in list(table._open_key_fds):
            del table[cpu]  # BCC's own clean-up, or its __del__ complains at exit
        bcc = {"received": len(rows), "lost": lost[0], "seconds": last - work.started}
    return {"ours": ours, "bcc": bcc}


def rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def flood(binary: str, events: int) -> dict:
    with Program(BCC_RING) as prog:
        stream = prog.stream("events")
        before = rss_mib("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # restart the peak-RSS count here
        work = Workload(binary, events, prog)
        work.go()
        while stream.received + stream.lost < events and not (work.exited() and stream.rate == 0):
            stream.wait(seconds=0.5)
        work.finish()
        result = {
            "before": before,
            "peak": rss_mib("VmHWM"),
            "rows": len(stream),
            "received": stream.received,
            "dropped": stream.dropped,
            "lost": stream.lost,
            "max_rows": stream._consumer.max_rows,
            "max_mib": stream._consumer.max_bytes / 2**20,
        }
        stream.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--flood", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--flood-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    n = args.events
    if args.flood_only:
        # In a process of its own, so that its peak memory is the flood's alone.
        with tempfile.TemporaryDirectory() as directory:
            print(json.dumps(flood(build_workload(directory), args.flood)))
        return
    with tempfile.TemporaryDirectory() as directory:
        binary = build_workload(directory)
        lives = [ring_live(binary, n, BCC_RING) for _ in range(args.repeat)]
        backlogs = [ring_backlog(binary, n) for _ in range(args.repeat)]
        perf = perf_live(binary, n)
    flooded = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--flood-only", "--flood", str(args.flood)],
            check=True, capture_output=True, text=True,
        ).stdout
    )

    med = {k: statistics.median(run[k] for run in lives) for k in ("alone", "loop", "live", "ratio", "cpu")}
    backlog = {k: statistics.median(run[k] for run in backlogs) for k in backlogs[0]}
    print(f"bpfnb event streams vs BCC callbacks; {n:,} events of 24 bytes; kernel {os.uname().release}, "
          f"{os.cpu_count()} CPUs; medians of {args.repeat} runs")
    print()
    print("ring buffer, live (64 MiB ring)")
    print(f"  workload alone with the probe:   {med['alone']:.3f} s (its loop {med['loop']:.3f} s)")
    print(f"  last event in the stream:        {med['live']:.3f} s   ratio {med['ratio']:.2f}x"
          "  (median of the pairs' ratios; goal <= 1.10x)")
    print("  received / lost per run:         "
          + ", ".join(f"{r['received']:,}/{r['lost']:,}" for r in lives))
    print()
    print("ring buffer, backlog of all events to a DataFrame")
    print(f"  bpfnb stream:   {backlog['ours']:.3f} s ({n / backlog['ours'] / 1e6:.1f}M events/s; "
          f"consumed in {backlog['streamed']:.3f} s)")
    print(f"  BCC callback:   {backlog['bcc']:.3f} s (drain alone {backlog['bcc_drain']:.3f} s)")
    print(f"  speed-up:       {backlog['bcc'] / backlog['ours']:.1f}x to a DataFrame, "
          f"{backlog['bcc_drain'] / backlog['ours']:.1f}x against BCC's drain alone  (goal >= 10x)")
    print()
    ours, bcc = perf["ours"], perf["bcc"]
    print(f"perf buffer, live (bpfnb default {default_pages()} pages/CPU; BCC default 8 pages/CPU)")
    for name, run in (("bpfnb stream", ours), ("BCC callback", bcc)):
        print(f"  {name}:   {run['received'] / run['seconds']:>12,.0f} events/s  "
              f"received {run['received']:,}  lost {run['lost']:,}")
    print(f"  speed-up:       {(ours['received'] / ours['seconds']) / (bcc['received'] / bcc['seconds']):.1f}x"
          "  (goal >= 3x, 0 lost)")
    print()
    print("consumer thread CPU time per million events")
    print(f"  ring buffer: {med['cpu'] / (n / 1e6) * 1000:.0f} ms    "
          f"perf buffer: {ours['cpu'] / (max(ours['received'], 1) / 1e6) * 1000:.0f} ms")
    print()
    retention = f"{flooded['max_rows']:,} rows / {flooded['max_mib']:.0f} MiB"
    print(f"{args.flood:,}-event flood, default retention ({retention})")
    print(f"  peak RSS {flooded['peak']:.0f} MiB, RSS with the stream open before the flood "
          f"{flooded['before']:.0f} MiB (a process of its own; the 64 MiB ring is mapped into it)")
    print(f"  rows held {flooded['rows']:,}, received {flooded['received']:,}, "
          f"dropped by retention {flooded['dropped']:,}, lost in the kernel {flooded['lost']:,}")


if __name__ == "__main__":
    main()
