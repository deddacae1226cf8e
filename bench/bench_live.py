"""Live plots: what one live bar plot of a 1000-key map at 1 Hz costs a Jupyter kernel.

Run as root from the repository: ``.venv/bin/python bench/bench_live.py``
(``--seconds S`` for a longer CPU sample, ``--trials T`` for more latency samples).

A real kernel (the installed "eBPF (bpfnb)" spec, else python3 with the
extension loaded) is started through jupyter_client, so every frame really goes
out as a widget message on IOPub, as it does in JupyterLab. In it, a tracepoint
on ``getppid`` spreads increments over keys 1..999 of a hash; key 0 is the
marker the latency trials write from user space. A separate workload process
calls ``getppid`` about 20,000 times a second, so the map changes between
frames and the probe's cost is charged to that process, not the kernel.

Figures:

1. The kernel process's CPU share (utime + stime from ``/proc/<pid>/stat``)
   over ``--seconds`` with the plot live, and the same with the plot paused
   (the kernel's own idle cost), as a percentage of one core.
2. Latency from a map change to the drawn frame that shows it: the marker key
   is set to a new top value, and the time until the frame holding it is
   drawn (PNG ready and handed to the widget) is measured in the kernel, over
   ``--trials`` changes at random moments. At 1 Hz this is on average half an
   interval plus the time to draw a frame, which is reported on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_client.manager import start_new_kernel

from bpfnb.tools.kernelspec import KERNEL_NAME

SOURCE = r"""
BPF_HASH(big, u32, u64, 1024);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 key = bpf_get_prandom_u32() % 999 + 1;
    big.increment(key);
    return 0;
}
"""

SETUP = f"""
import ctypes, os, random, statistics, time
import bpfnb
from bpfnb import live as _live
prog = bpfnb.Program({SOURCE!r}, name="bench_live")
view = prog["big"]
table = prog.bpf["big"]
for key in range(1000):
    table[table.Key(key)] = table.Leaf(1)
w = view.live(kind="bar", interval=1.0) if hasattr(view, "live") else _live.live(view, kind="bar", interval=1.0)
"""

LATENCY = """
latencies = []
for trial in range({trials}):
    time.sleep(random.uniform(0.3, 1.3))
    marker = 10**9 + trial
    table[table.Key(0)] = table.Leaf(marker)
    changed = time.monotonic()
    while not (len(w.data) and w.data["value"].iloc[0] == marker):
        time.sleep(0.002)
    latencies.append(w.last_frame_at - changed)
print(json.dumps({{"latencies": latencies, "draws": list(w.draw_seconds), "rows": len(view.df())}}))
"""

WORKLOAD = """
import os, time
while True:
    for _ in range(200):
        os.getppid()
    time.sleep(0.01)
"""


def run(client, code: str) -> str:
    """Execute ``code`` in the kernel; return its stdout, raise on an error."""
    out: list[str] = []

    def collect(msg):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            raise RuntimeError("\n".join(content["traceback"]))

    client.execute_interactive(code, output_hook=collect, timeout=600)
    return "".join(out)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, client, seconds: float) -> float:
    """Share of one core the process used over ``seconds`` (IOPub drained meanwhile)."""
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - start < seconds:
        try:
            client.get_iopub_msg(timeout=0.5)
        except Exception:  # noqa: BLE001 - queue.Empty: nothing to drain right now
            pass
    return (cpu_seconds(pid) - start_cpu) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each CPU sample")
    parser.add_argument("--trials", type=int, default=15, help="map changes timed for the latency")
    args = parser.parse_args()

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        kernel, prelude = KERNEL_NAME, ""
    except NoSuchKernel:
        kernel, prelude = "python3", "%load_ext bpfnb\n"
    workload = subprocess.Popen([sys.executable, "-c", WORKLOAD])
    manager, client = start_new_kernel(kernel_name=kernel)
    try:
        pid = int(run(client, prelude + "import json, os\nprint(os.getpid())"))
        run(client, SETUP)
        time.sleep(3)  # warm-up: fonts, first frames
        live = cpu_share(pid, client, args.seconds)
        run(client, "w.pause()")
        paused = cpu_share(pid, client, args.seconds / 2)
        run(client, "w.resume()")
        result = json.loads(run(client, LATENCY.format(trials=args.trials)))
        run(client, "w.stop(); prog.detach()")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=False)
        workload.terminate()
        workload.wait()

    lat = sorted(result["latencies"])
    draws = sorted(result["draws"])
    print(f"live bar plot of a {result['rows']}-key hash at 1 Hz, kernel {kernel!r}, pid {pid}")
    print(f"  kernel CPU, plot live    {live:7.2%} of a core over {args.seconds:g} s   (goal <= 5%)")
    print(f"  kernel CPU, plot paused  {paused:7.2%} of a core over {args.seconds / 2:g} s")
    print(f"  live plot's own share    {live - paused:7.2%} of a core")
    print(
        f"  map change -> drawn frame: median {lat[len(lat) // 2] * 1e3:.0f} ms, "
        f"min {lat[0] * 1e3:.0f} ms, max {lat[-1] * 1e3:.0f} ms over {len(lat)} changes"
    )
    print(f"  one frame (snapshot + draw + PNG): median {draws[len(draws) // 2] * 1e3:.1f} ms, max {draws[-1] * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
