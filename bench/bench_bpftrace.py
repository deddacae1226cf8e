"""bpftrace through bpfnb against bpftrace alone, side by side in one run.

(a) A map of N distinct keys (``@m[$i] = count()``, $i counting getppid() calls) to a DataFrame:
    bpfnb runs the script (``Program(..., engine="bpftrace", interval_ms=0)``), the
    workload runs, ``detach()`` makes bpftrace print the map as JSON as it exits,
    and ``df()`` builds the frame; bpftrace alone prints the same map as text at
    exit into a file (``bpftrace -o FILE``). Both are timed from starting
    bpftrace to the map in hand, workload included, and from SIGINT on.
(b) N printf events, one per getppid(), to a frame: ``prog.stream()`` until
    no more lines come, then ``df()`` (``time``, ``text`` and an int ``tid``
    column); bpftrace alone writes them to a file (``bpftrace -o FILE``).
    Events delivered, lost (bpftrace's "Lost N events"), and the time from the
    workload's start to the last event.

Run as root from the checkout (needs cc; about a minute)::

    .venv/bin/python bench/bench_bpftrace.py [N]      # N = 1000000 by default

The workload is bench/getppid_loop.c (N getppid() calls, as fast as it can),
built under a name of this benchmark's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bpfnb  # noqa: E402
from bpfnb.engines.bpftrace.runner import in_event_loop  # noqa: E402

HERE = Path(__file__).resolve().parent
# One thread calls: the counter @n gives each call a key of its own.
MAP_SCRIPT = 'tracepoint:syscalls:sys_enter_getppid /comm == "bench-bpftrace"/ { $i = @n; @n = $i + 1; @m[$i] = count(); }'
PRINTF_SCRIPT = 'tracepoint:syscalls:sys_enter_getppid /comm == "bench-bpftrace"/ { printf("tid=%d\\n", tid); }'
#: Seconds without a new event after which a stream or a file is taken as complete.
SETTLE = 0.5


def build_workload(directory: str) -> str:
    """Compile bench/getppid_loop.c into ``directory``; return the binary's path.

    Its name (the comm the scripts look for) is this benchmark's own: other
    benchmarks may run getppid_loop on this machine at the same time.
    """
    binary = os.path.join(directory, "bench-bpftrace")
    subprocess.run(["cc", "-O2", "-o", binary, str(HERE / "getppid_loop.c")], check=True)
    return binary


def workload(binary: str, n: int) -> float:
    """Run the workload to its end; the seconds its loop took."""
    done = subprocess.run([binary, str(n)], input=b"g", capture_output=True, check=True)
    return int(done.stdout) / 1e9


def bpftrace_alone(script: str, out: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    """Plain bpftrace writing its output to ``out``, once attached; and when it was started."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["bpftrace", "-o", str(out), "-e", script],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # "Attaching N probes..." comes before attaching; its event loop comes after.
    while not in_event_loop(process.pid):
        time.sleep(0.01)
    return process, started


def settle(count: Callable[[], int]) -> float:
    """Wait until ``count()`` has not grown for SETTLE seconds; when it last grew."""
    last, since = -1, time.monotonic()
    while time.monotonic() - since < SETTLE:
        now = count()
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.02)
    return since


# -- (a) a map of N keys --------------------------------------------------------------


def map_bpfnb(binary: str, n: int, env: dict[str, str]) -> dict[str, Any]:
    started = time.monotonic()
    program = bpfnb.Program(MAP_SCRIPT, engine="bpftrace", interval_ms=0, env=env)
    attached = time.monotonic()
    view = program["@m"]
    loop = workload(binary, n)
    stopping = time.monotonic()
    program.detach()
    printed = time.monotonic()
    frame = view.df()
    done = time.monotonic()
    return {
        "keys": len(frame),
        "start to attached (s)": attached - started,
        "workload loop (s)": loop,
        "SIGINT to map printed (s)": printed - stopping,
        "printed map to frame (s)": done - printed,
        "SIGINT to map in hand (s)": done - stopping,
        "start to map in hand (s)": done - started,
    }


def map_alone(binary: str, n: int, env: dict[str, str], directory: str) -> dict[str, Any]:
    out = Path(directory, "map.txt")
    process, started = bpftrace_alone(MAP_SCRIPT, out, env)
    attached = time.monotonic()
    loop = workload(binary, n)
    stopping = time.monotonic()
    process.send_signal(signal.SIGINT)
    process.wait()
    done = time.monotonic()
    with out.open() as f:
        keys = sum(1 for line in f if line.startswith("@m["))
    return {
        "keys": keys,
        "start to attached (s)": attached - started,
        "workload loop (s)": loop,
        "SIGINT to map in hand (s)": done - stopping,
        "start to map in hand (s)": done - started,
    }


# -- (b) N printf events ---------------------------------------------------------------


def printf_bpfnb(binary: str, n: int) -> dict[str, Any]:
    with bpfnb.Program(PRINTF_SCRIPT, engine="bpftrace") as program:
        stream = program.stream()
        started = time.monotonic()
        loop = workload(binary, n)
        last = settle(lambda: stream.received + stream.lost)
        framing = time.monotonic()
        frame = stream.df()
        done = time.monotonic()
        assert str(frame["tid"].dtype) == "int64", frame.dtypes
        return {
            "delivered": stream.received,
            "lost": stream.lost,
            "in the frame": len(frame),
            "workload loop (s)": loop,
            "workload start to last event (s)": last - started,
            "lines to frame (s)": done - framing,
        }


def printf_alone(binary: str, n: int, directory: str) -> dict[str, Any]:
    out = Path(directory, "printf.txt")
    process, _ = bpftrace_alone(PRINTF_SCRIPT, out, {})
    started = time.monotonic()
    loop = workload(binary, n)
    last = settle(lambda: out.stat().st_size)
    process.send_signal(signal.SIGINT)
    process.wait()
    delivered = lost = 0
    with out.open() as f:
        for line in f:
            if line.startswith("tid="):
                delivered += 1
            elif line.startswith("Lost "):
                lost += int(line.split()[1])
    return {
        "delivered": delivered,
        "lost": lost,
        "workload loop (s)": loop,
        "workload start to last event (s)": last - started,
    }


def show(title: str, columns: dict[str, dict[str, Any]]) -> None:
    """One table: a row per measure, a column per contender."""
    print(f"\n{title}")
    names = list(dict.fromkeys(k for c in columns.values() for k in c))
    print(f"  {'':34}" + "".join(f"{c:>22}" for c in columns))
    for name in names:
        cells = [c.get(name, "") for c in columns.values()]
        print(f"  {name:34}" + "".join(f"{v:>22.2f}" if isinstance(v, float) else f"{v:>22,}" if v != "" else f"{'-':>22}" for v in cells))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    env = {"BPFTRACE_MAP_KEYS_MAX": str(n + 100_000)}  # bpftrace keeps 4096 keys a map by default
    print(f"bpftrace through bpfnb vs bpftrace alone, N = {n:,}; load average {Path('/proc/loadavg').read_text().split()[0]}")
    with tempfile.TemporaryDirectory() as directory:
        binary = build_workload(directory)
        # The first bpftrace of a while takes seconds longer to start (BTF and symbols read cold): not a contender's.
        subprocess.run(["bpftrace", "-e", "BEGIN { exit(); }"], capture_output=True, check=True)
        show(
            f"(a) a map of {n:,} distinct keys, printed at exit",
            {"bpfnb: JSON -> frame": map_bpfnb(binary, n, env), "bpftrace: text file": map_alone(binary, n, env, directory)},
        )
        show(
            f"(b) {n:,} printf events",
            {"bpfnb: stream -> frame": printf_bpfnb(binary, n), "bpftrace -o file": printf_alone(binary, n, directory)},
        )


if __name__ == "__main__":
    main()
