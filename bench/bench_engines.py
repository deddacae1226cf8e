"""The two engines side by side in one run: compile+load, a 1M-entry hash to a DataFrame, 1M ring-buffer events.

Run as root from the repository: ``.venv/bin/python bench/bench_engines.py``
(``--entries N`` for the hash, ``--events N`` for the streams, ``--repeat R``
for the samples of every figure; medians are shown).

1. Compile+load of a small tracepoint program (a per-pid count of getppid
   calls): a BCC cell; a libbpf cell cold (nothing in the object cache, which
   is a fresh ``$BPFNB_CACHE_DIR``; vmlinux.h, made once per kernel, is made
   first and timed on its own); the same libbpf cell cached (an unchanged cell
   run again). Goal: cached < 0.1 s. The process is warmed up first (bcc
   imported, libbpf.so loaded), as in a notebook after its first cell.
2. A hash of N entries (default 1M), key ``struct { u32 pid; u32 cpu; char
   comm[16]; }``, value ``struct { u64 count; u64 bytes; }``, declared alike
   in both engines and filled from user space by batch update; ``.df()`` of
   each, and the kernel's floor for each (one batch lookup into preallocated
   arrays). Goal: libbpf no slower than BCC.
3. Ring buffer (64 MiB), the probe of bench/common.py in each engine:
   live, the time from the workload's start to the last of N events' arrival
   in a stream against the workload's own time with the probe attached and
   nobody consuming (goal <= 1.10x; each repetition is such a pair, and the
   median of the pairs' ratios is shown, then the ratio of the fastest live
   run to the fastest run alone); backlog, N events already in the buffer to
   a DataFrame. Lost events are counted (goal: 0). Other processes' load
   moves the workload's time by tens of percent from one run to the next, so
   two parts of the live run's extra time that it hardly moves are shown
   too: how long after it was sent the last event arrived, and the consumer
   thread's CPU time. (alone + that delay + that CPU time) / alone estimates
   the ratio on a machine so busy that all of the consumer's CPU time is
   taken from the workload's CPU; with an idle second CPU, the ratio is
   nearer (alone + delay) / alone.

The machine's 1-minute load average is printed at the end of each section:
on a small shared machine, other processes' load is the main source of noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    HASH_TYPES,
    RING,
    build_workload,
    fill,
    floor,
    load_average,
    ring_live,
    same_rows,
    stream_backlog,
    timed,
)

from bpfnb import Program

ENGINES = ("bcc", "libbpf")
LIBBPF_HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'
LICENSE = 'char LICENSE[] SEC("license") = "GPL";\n'

SMALL = {
    "bcc": """
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
""",
    "libbpf": LIBBPF_HEAD + """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240);
         __type(key, u32); __type(value, u64); } counts SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int count(void *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *n = bpf_map_lookup_elem(&counts, &pid);
    if (n) __sync_fetch_and_add(n, 1);
    else bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    return 0;
}
""" + LICENSE,
}

HASH = {
    "bcc": HASH_TYPES + "BPF_HASH(big, struct key_t, struct val_t, ENTRIES);\n",
    "libbpf": LIBBPF_HEAD + HASH_TYPES + """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, ENTRIES);
         __type(key, struct key_t); __type(value, struct val_t); } big SEC(".maps");
""" + LICENSE,
}


def load_seconds(source: str, **options: Any) -> tuple[float, bool]:
    """Seconds to compile, load and attach ``source``, and whether the libbpf object came from the cache."""
    started = time.perf_counter()
    prog = Program(source, name="small", **options)
    seconds = time.perf_counter() - started
    cached = bool(getattr(prog._loaded, "cached", False))
    prog.detach()
    return seconds, cached


def compile_load(cache: Path, repeat: int) -> dict[str, float]:
    from bpfnb.engines.libbpf.vmlinux import vmlinux_header

    started = time.perf_counter()
    vmlinux_header()
    vmlinux = time.perf_counter() - started
    for engine in ENGINES:  # warm-up: imports, shared libraries, clang found; not the cells timed below
        load_seconds(SMALL[engine], cflags=["-DWARM_UP"])
    samples: dict[str, list[float]] = {"bcc": [], "cold": [], "cached": []}
    for _ in range(repeat):
        samples["bcc"].append(load_seconds(SMALL["bcc"])[0])
        shutil.rmtree(cache / "objects", ignore_errors=True)
        seconds, cached = load_seconds(SMALL["libbpf"])
        assert not cached
        samples["cold"].append(seconds)
        seconds, cached = load_seconds(SMALL["libbpf"])
        assert cached
        samples["cached"].append(seconds)
    return {"vmlinux": vmlinux, **{k: statistics.median(v) for k, v in samples.items()}}


def maps(entries: int, repeat: int) -> dict[str, dict[str, float]]:
    progs = {e: Program(HASH[e], name=f"{e}_hash", cflags=[f"-DENTRIES={entries}"]) for e in ENGINES}
    try:
        views = {e: progs[e]["big"] for e in ENGINES}
        assert views["bcc"].layout == views["libbpf"].layout, (views["bcc"].layout, views["libbpf"].layout)
        result: dict[str, dict[str, float]] = {}
        for engine, view in views.items():
            fill_s, _ = timed(lambda: fill(view, entries), 1)
            result[engine] = {"fill": fill_s}
        assert same_rows(views["bcc"].df(), views["libbpf"].df(), by="pid")
        samples: dict[str, dict[str, list[float]]] = {e: {"df": [], "floor": []} for e in ENGINES}
        lookups = {e: floor(views[e]) for e in ENGINES}
        for _ in range(repeat):  # interleaved, so that load from other processes hits both alike
            for engine in ENGINES:
                samples[engine]["floor"].append(timed(lookups[engine], 1)[0])
                seconds, frame = timed(views[engine].df, 1)
                assert len(frame) == entries
                samples[engine]["df"].append(seconds)
                del frame
        for engine in ENGINES:
            result[engine].update({k: statistics.median(v) for k, v in samples[engine].items()})
        return result
    finally:
        for prog in progs.values():
            prog.detach()


def streams(binary: str, events: int, repeat: int) -> dict[str, dict[str, Any]]:
    lives: dict[str, list[dict[str, Any]]] = {e: [] for e in ENGINES}
    backlogs: dict[str, list[dict[str, float]]] = {e: [] for e in ENGINES}
    for _ in range(repeat):
        for engine in ENGINES:
            lives[engine].append(ring_live(binary, events, RING[engine]))
    for _ in range(repeat):
        for engine in ENGINES:
            backlogs[engine].append(stream_backlog(binary, events, RING[engine]))
    result: dict[str, dict[str, Any]] = {}
    for engine in ENGINES:
        runs = lives[engine]
        result[engine] = {
            **{k: statistics.median(r[k] for r in runs) for k in ("alone", "live", "ratio", "cpu", "tail")},
            "best": min(r["live"] for r in runs) / min(r["alone"] for r in runs),
            "ratios": [r["ratio"] for r in runs],
            "lost": [r["lost"] for r in runs],
            "received": [r["received"] for r in runs],
            **{k: statistics.median(b[k] for b in backlogs[engine]) for k in ("streamed", "frame")},
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bpfnb-bench-cache-") as cache, \
            tempfile.TemporaryDirectory() as directory:
        # Every libbpf cell of this run compiles into a cache of its own: cold means cold,
        # and no object built by an older bpfnb is reused.
        os.environ["BPFNB_CACHE_DIR"] = cache
        loads = compile_load(Path(cache), args.repeat)
        load_after_loads = load_average()
        mapped = maps(args.entries, args.repeat)
        load_after_maps = load_average()
        streamed = streams(build_workload(directory), args.events, args.repeat)
        load_after_streams = load_average()

    print(f"bpfnb engines side by side: BCC vs libbpf (CO-RE); kernel {os.uname().release}, {os.cpu_count()} CPUs; "
          f"medians of {args.repeat} runs")
    print()
    print("compile+load+attach of a small tracepoint program")
    print(f"  BCC cell                                {loads['bcc']:8.3f} s")
    print(f"  libbpf cell, cold (empty object cache)  {loads['cold']:8.3f} s")
    print(f"  libbpf cell, cached (unchanged re-run)  {loads['cached']:8.3f} s   (goal < 0.1 s)")
    print(f"  vmlinux.h from the kernel's BTF         {loads['vmlinux']:8.3f} s   (once per kernel, not in the above)")
    print(f"  load average after: {load_after_loads}")
    print()
    print(f"hash of {args.entries:,} entries (24-byte key with char comm[16], 16-byte value) to a DataFrame")
    print(f"  {'':30} {'BCC':>10} {'libbpf':>10}")
    for what, key in (("fill by batch update (once)", "fill"), ("kernel floor (batch lookup)", "floor"),
                      (".df()", "df")):
        print(f"  {what:30} {mapped['bcc'][key]:9.3f}s {mapped['libbpf'][key]:9.3f}s")
    print(f"  libbpf .df() / BCC .df(): {mapped['libbpf']['df'] / mapped['bcc']['df']:.2f}x  (goal <= 1.00x, "
          "same frame checked)")
    print(f"  load average after: {load_after_maps}")
    print()
    n = args.events
    print(f"ring buffer (64 MiB), {n:,} events of 24 bytes")
    print(f"  {'':44} {'BCC':>10} {'libbpf':>10}")
    rows = [
        ("live: workload alone with the probe", lambda r: f"{r['alone']:9.3f}s"),
        ("live: last event in the stream", lambda r: f"{r['live']:9.3f}s"),
        ("live: ratio (median of pairs; goal <= 1.10x)", lambda r: f"{r['ratio']:9.2f}x"),
        ("live: ratio of the fastest runs", lambda r: f"{r['best']:9.2f}x"),
        ("live: last event's delay after it was sent", lambda r: f"{r['tail'] * 1000:7.1f}ms"),
        ("live: consumer thread CPU", lambda r: f"{r['cpu'] * 1000:7.1f}ms"),
        ("live: (alone + delay + consumer CPU) / alone", lambda r: f"{(r['alone'] + r['tail'] + r['cpu']) / r['alone']:9.2f}x"),
        ("backlog: all events taken by the stream", lambda r: f"{r['streamed']:9.3f}s"),
        ("backlog: ... and in a DataFrame", lambda r: f"{r['frame']:9.3f}s"),
        ("backlog: events/s to a DataFrame", lambda r: f"{n / r['frame'] / 1e6:8.1f}M"),
    ]
    for what, shown in rows:
        print(f"  {what:44} {shown(streamed['bcc']):>10} {shown(streamed['libbpf']):>10}")
    for engine in ENGINES:
        r = streamed[engine]
        print(f"  {engine} live runs: ratios " + ", ".join(f"{x:.2f}" for x in r["ratios"])
              + "; received/lost " + ", ".join(f"{a:,}/{b:,}" for a, b in zip(r["received"], r["lost"])))
    print(f"  load average after: {load_after_streams}")


if __name__ == "__main__":
    main()
