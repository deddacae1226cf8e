"""Captures: what recording costs a live stream, what a capture weighs, how fast it loads.

Run as root from the repository: ``.venv/bin/python bench/bench_capture.py``
(``--events N`` changes the 1M events, ``--repeat R`` the pairs of live runs;
medians are shown).

Workload and probe: those of bench/common.py (N getppid() calls, one 24-byte
event each into a 64 MiB ring buffer).

- live, recording off vs on: time from the workload's start to the last
  event's arrival in the stream, without and with ``bpfnb.record()``
  following the program, measured in pairs a second apart (goal: on within
  10% of off); and how long after that arrival the recording had written
  every event (its flush interval is 0.5 s). 1M events arrive in well under
  half a second here, between two flushes: ``--events 5000000`` has the
  recorder decode and write while events flow;
- the capture: bytes of the stream's table per million events, and of the
  whole capture directory (manifest and map snapshots included);
- loading: ``bpfnb.load(path)[...].stream("events").df()`` of those events,
  from the directory and from a zip of it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import BCC_RING, Workload, build_workload, load_average, thread_cpu_seconds, timed

import bpfnb
from bpfnb import Program

TABLE = "probe/streams/events"


def live(binary: str, events: int, capture: Path | None) -> dict[str, Any]:
    """One run of ``events`` events into a stream; with ``capture``, recorded there."""
    with Program(BCC_RING, name="probe") as prog:
        recorder = bpfnb.record(capture, prog) if capture is not None else None
        stream = prog.stream("events", type="struct event")
        work = Workload(binary, events, prog)
        work.go()
        stream.wait(n=events, seconds=120)
        arrived = time.monotonic()
        cpu = thread_cpu_seconds(stream)
        work.finish()
        result: dict[str, Any] = {"live": arrived - work.started, "received": stream.received, "lost": stream.lost, "cpu": cpu}
        if capture is not None:
            result["written"] = written(capture, events) - arrived
        stream.stop()
        if recorder is not None:
            recorder.stop()
    return result


def written(capture: Path, events: int) -> float:
    """When the capture's manifest first listed ``events`` rows of the stream (monotonic seconds)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            tables = json.loads((capture / "manifest.json").read_text())["tables"]
        except (OSError, ValueError):
            tables = {}
        if tables.get(TABLE, {}).get("rows", 0) >= events:
            return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError(f"the recording did not write {events} events within a minute")


def sizes(capture: Path) -> tuple[int, int]:
    """Bytes of the stream's table and of the whole capture directory."""
    table = sum(f.stat().st_size for f in (capture / "tables" / TABLE).rglob("*.parquet"))
    whole = sum(f.stat().st_size for f in capture.rglob("*") if f.is_file())
    return table, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as directory:
        binary = build_workload(directory)
        pairs = []
        for i in range(args.repeat):
            off = live(binary, n, None)
            on = live(binary, n, Path(directory) / f"capture-{i}")
            pairs.append((off, on))
        capture = Path(directory) / "capture-0"
        table_bytes, capture_bytes = sizes(capture)
        archive = bpfnb.load(capture).zip(Path(directory) / "capture.zip")

        def load_frame(path: Path) -> int:
            return len(bpfnb.load(path)["probe"].stream("events").df())

        from_dir, rows = timed(lambda: load_frame(capture), args.repeat)
        from_zip, _ = timed(lambda: load_frame(archive), args.repeat)
        assert rows == n, (rows, n)
        zip_bytes = archive.stat().st_size
        for i in range(args.repeat):
            shutil.rmtree(Path(directory) / f"capture-{i}")

    ratios = [on["live"] / off["live"] for off, on in pairs]
    med = {
        "off": statistics.median(off["live"] for off, _ in pairs),
        "on": statistics.median(on["live"] for _, on in pairs),
        "ratio": statistics.median(ratios),
        "written": statistics.median(on["written"] for _, on in pairs),
        "cpu_off": statistics.median(off["cpu"] for off, _ in pairs),
        "cpu_on": statistics.median(on["cpu"] for _, on in pairs),
    }
    per_million = 1e6 / n
    print(f"bpfnb captures; {n:,} events of 24 bytes; kernel {os.uname().release}, {os.cpu_count()} CPUs; "
          f"load average {load_average()}; medians of {args.repeat} pairs")
    print()
    print("ring buffer, live: workload start to the last event in the stream")
    print(f"  recording off:  {med['off']:.3f} s")
    print(f"  recording on:   {med['on']:.3f} s   ratio {med['ratio']:.2f}x (median of the pairs' ratios; goal <= 1.10x)")
    print("  pairs' ratios:  " + ", ".join(f"{r:.2f}" for r in ratios))
    print("  received/lost:  " + ", ".join(f"{o['received']:,}/{o['lost']:,} off, {r['received']:,}/{r['lost']:,} on"
                                          for o, r in pairs))
    print(f"  consumer thread CPU: {med['cpu_off']:.3f} s off, {med['cpu_on']:.3f} s on")
    print(f"  every event written to the capture {med['written']:.3f} s after the last one arrived (flush every 0.5 s)")
    print()
    print("capture size")
    print(f"  stream table:   {table_bytes / 2**20 * per_million:.1f} MiB per million events (Parquet, zstd)")
    print(f"  whole capture:  {capture_bytes / 2**20:.1f} MiB directory, {zip_bytes / 2**20:.1f} MiB zipped")
    print()
    print(f"load into a frame: bpfnb.load(path)['probe'].stream('events').df(), {n:,} rows")
    print(f"  from the directory: {from_dir:.3f} s ({n / from_dir / 1e6:.1f}M rows/s)")
    print(f"  from the zip:       {from_zip:.3f} s ({n / from_zip / 1e6:.1f}M rows/s)")


if __name__ == "__main__":
    sys.exit(main())
