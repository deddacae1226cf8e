"""Maps as DataFrames: every figure of the maps issue, side by side in one run.

Run as root from the repository: ``.venv/bin/python bench/bench_maps.py``
(``--entries N`` for a smaller hash, ``--repeat R`` for more samples).

1. A hash of N entries (default 1M), key ``struct { u32 pid; u32 cpu; char
   comm[16]; }``, value ``struct { u64 count; u64 bytes; }``, filled from user
   space by batch update. Timed: BCC's ``items()`` into a DataFrame, bpfnb's
   ``.df()``, the kernel floor (one batch lookup of the whole map into
   preallocated numpy buffers, nothing else), and bpfnb's per-entry fallback
   (``get_next_key`` + ``lookup``, the path for kernels without batches).
2. Arrays and a histogram of 10k slots, ``.df()`` medians: a ``BPF_ARRAY``
   and a ``BPF_HISTOGRAM`` (which bpfnb creates with ``BPF_F_MMAPABLE`` and
   reads through a shared mapping), and an array declared without that flag
   (read by batch lookup) with the kernel's batch floor for it.
3. Peak memory of ``.df()`` on the big map (peak RSS growth, reset through
   ``/proc/self/clear_refs``) against the raw key+value bytes plus the frame.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from common import HASH_TYPES, fill, floor, timed

from bpfnb import Program
from bpfnb.maps.io import MapIO

SOURCE = HASH_TYPES + r"""
BPF_HASH(big, struct key_t, struct val_t, ENTRIES);
BPF_ARRAY(arr, u64, 10000);
BPF_HISTOGRAM(hist, int, 10000);
BPF_TABLE("array", int, u64, parr, 10000);
"""


def bcc_items_frame(table) -> pd.DataFrame:
    rows = [(k.pid, k.cpu, k.comm.decode("utf-8", "replace"), v.count, v.bytes) for k, v in table.items()]
    return pd.DataFrame(rows, columns=["pid", "cpu", "comm", "count", "bytes"])


def fallback_frame(view) -> pd.DataFrame:
    io = MapIO(view.spec.fd, view.layout, view.max_entries, batch=False)
    keys, values = io.read()
    return view._frame(keys, values, decode=None, percpu="sum")


def peak_rss_growth(fn) -> tuple[int, object]:
    """Peak resident-set growth in bytes while ``fn`` runs."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS

    def status(field: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        raise LookupError(field)

    before = status("VmRSS:")
    result = fn()
    return status("VmHWM:") - before, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-items", action="store_true", help="skip BCC items() (about 10 s at 1M)")
    args = parser.parse_args()
    n = args.entries

    with Program(SOURCE, name="bench_maps", cflags=[f"-DENTRIES={n}"]) as prog:
        big, arr, hist = prog["big"], prog["arr"], prog["hist"]
        start = time.perf_counter()
        fill(big, n)
        fill_s = time.perf_counter() - start
        arr._io.update(np.arange(10000, dtype=np.int32), np.arange(10000, dtype=np.uint64))
        hist._io.update(np.arange(10000, dtype=np.int32), np.arange(10000, dtype=np.uint64))
        assert len(big) == n

        # First, while the process has never built a frame (allocators hold no spare memory).
        gc.collect()
        peak, frame = peak_rss_growth(big.df)
        raw = n * (big.layout.key.itemsize + big.layout.value.itemsize)
        frame_bytes = int(frame.memory_usage(deep=True).sum())
        del frame

        # Interleaved, so that load from other processes hits both alike.
        lookup, floor_samples, df_samples = floor(big), [], []
        for _ in range(args.repeat):
            floor_samples.append(timed(lookup, 1)[0])
            df_samples.append(timed(big.df, 1)[0])
        floor_s, df_s = statistics.median(floor_samples), statistics.median(df_samples)
        frame = big.df()
        assert len(frame) == n and frame["comm"].iloc[0].startswith("comm-")
        fallback_s, slow = timed(lambda: fallback_frame(big), 1)
        assert len(slow) == n
        items_s = float("nan")
        if not args.skip_items:
            items_s, reference = timed(lambda: bcc_items_frame(prog.bpf["big"]), 1)
            ours = frame.sort_values("pid", ignore_index=True)
            theirs = reference.sort_values("pid", ignore_index=True)
            assert (ours["count"].to_numpy() == theirs["count"].to_numpy()).all()
            assert (ours["comm"].to_numpy() == theirs["comm"].to_numpy()).all()
        len_s, _ = timed(lambda: len(big), args.repeat)

        parr = prog["parr"]
        parr._io.update(np.arange(10000, dtype=np.int32), np.arange(10000, dtype=np.uint64))
        parr_floor_s, _ = timed(floor(parr), 50)
        parr_s, parr_frame = timed(parr.df, 50)
        assert (parr_frame["value"].to_numpy() == np.arange(10000)).all()
        arr_s, arr_frame = timed(arr.df, 50)
        assert arr._io.last_path == "mmap" and (arr_frame["value"].to_numpy() == np.arange(10000)).all()
        hist_s, hist_frame = timed(hist.df, 50)
        assert len(arr_frame) == 10000 and len(hist_frame) == 10000


    rows = [
        ("fill by batch update", fill_s, ""),
        ("BCC items() -> DataFrame", items_s, ""),
        ("kernel floor: batch lookup into preallocated arrays", floor_s, ""),
        ("bpfnb .df()", df_s, f"{items_s / df_s:.1f}x faster than items(); {df_s / floor_s:.2f}x the floor"),
        ("bpfnb .df() without batch ops (get_next_key + lookup)", fallback_s, f"{fallback_s / df_s:.1f}x .df()"),
        ("bpfnb len()", len_s, ""),
        ("BPF_ARRAY of 10k slots .df() (median of 50)", arr_s, "mmapable: read from the shared mapping"),
        ("array of 10k slots without BPF_F_MMAPABLE .df()", parr_s, "batch lookup"),
        ("  its kernel floor (batch lookup into preallocated arrays)", parr_floor_s, ""),
        ("BPF_HISTOGRAM of 10k slots .df() (median of 50)", hist_s, "mmapable (int keys)"),
    ]
    print(f"hash of {n:,} entries, key {big.key_type} ({big.layout.key.itemsize} B), "
          f"value {big.value_type} ({big.layout.value.itemsize} B); median of {args.repeat} unless noted")
    for what, seconds, note in rows:
        shown = "skipped" if seconds != seconds else f"{seconds * 1000:10.2f} ms"
        print(f"  {what:<58} {shown:>13}  {note}")
    print(
        f"  peak RSS growth during .df(): {peak / 2**20:.1f} MiB; raw key+value bytes {raw / 2**20:.1f} MiB "
        f"+ DataFrame {frame_bytes / 2**20:.1f} MiB = {(raw + frame_bytes) / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main()
