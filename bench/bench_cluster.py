"""One stream gathered from a cluster: per-host throughput against a local stream, CPU, bytes on the wire.

Run as root from the repository: ``.venv/bin/python bench/bench_cluster.py``
(``--events N`` changes the 1M events per host, ``--hosts H`` the 4 hosts,
``--repeat R`` the runs of each measure, ``--compression lz4`` compresses
what engines send).

The hosts are those of the cluster tests (tests/privileged/cluster_hosts.py):
network namespaces of this machine, each with its own hostname and an engine,
a controller on a veth address; the client is this process. Each host runs
tests/privileged/data/workload.c (N getppid() calls) in its own cgroup, and
the cell sends one 24-byte ring-buffer event per call of its own host's
workload (a 64 MiB ring: no event is lost).

The local reference runs in this process at the same time: as many copies of
the cell, each with its own cgroup and ``Stream``. All of them and the
hosts' cells stay loaded throughout (all engines share this kernel, so every
getppid() runs every copy, and the others filter it out: the same kernel work
for both). Other processes' load moves a run's time by tens of percent from
one second to the next, so each cluster run is paired with a local run just
before it, and the median of the pairs' ratios is shown.

Figures:

- per host, one host at a time: events/s from the workload's start to the
  last of its events gathered here, against a local stream's from the
  workload's start to the last event in the stream (goal: at least 80%); and
  how long after its workload ended the last event arrived, in each;
- all hosts at once against as many local streams at once (on 2 cores, the
  producers share the CPU: compare the sums);
- CPU per million events: this process while gathering (all its threads),
  the engines sending them (every thread of each engine process, from /proc),
  the controller passing them on (with its child processes), and this
  process for a local stream; an idle engine's CPU (its stream open,
  no events); and the client's CPU to build the one DataFrame of every
  host's events;
- bytes received per event (as the engines sent them).

The machine's load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "privileged"))

from cluster_hosts import CGROUP_ROOT, HOST_INCLUDE, cluster_hosts  # noqa: E402
from common import load_average  # noqa: E402

import bpfnb  # noqa: E402

CELL = r"""
#include "host.h"
struct event { u64 ts; u32 pid; u32 cpu; u64 n; };
BPF_RINGBUF_OUTPUT(events, 16384);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_cgroup_id() != HOST_CGROUP) return 0;
    u64 id = bpf_get_current_pid_tgid();
    struct event e = {.ts = bpf_ktime_get_ns(), .pid = id >> 32, .cpu = bpf_get_smp_processor_id(), .n = 0};
    events.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""


def process_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` used so far, all its threads (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the controller runs its queues and schedulers as child processes)."""
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return [pid] + [p for child in children for p in process_tree(child)]


class Run:
    """Workloads started together, timed to their exit and to the arrival of their last event.

    ``watched`` names groups of other processes whose CPU time the run is to count.
    """

    def __init__(
        self, start: Callable[[], list[subprocess.Popen[bytes]]], watched: Mapping[str, Sequence[int]] | None = None
    ) -> None:
        self.watched = dict(watched or {})
        self.before = {name: sum(map(process_cpu, pids)) for name, pids in self.watched.items()}
        self.cpu = time.process_time()
        self.started = time.monotonic()
        self.exited: list[float] = []
        for process in start():
            threading.Thread(target=self._reap, args=(process,), daemon=True).start()

    def _reap(self, process: subprocess.Popen[bytes]) -> None:
        assert process.wait() == 0
        self.exited.append(time.monotonic())

    def done(self, workloads: int) -> tuple[float, float, float, dict[str, float]]:
        """Once every event arrived: seconds since the start, the last event's delay after the last exit, CPU
        of this process and of each group of watched processes."""
        arrived = time.monotonic()
        cpu = time.process_time() - self.cpu
        watched = {name: sum(map(process_cpu, pids)) - self.before[name] for name, pids in self.watched.items()}
        while len(self.exited) < workloads:
            time.sleep(0.001)
        return arrived - self.started, max(0.0, arrived - max(self.exited)), cpu, watched


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--compression", default=None, choices=["lz4", "zstd"])
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs of each measure (medians are shown)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    binary = directory / "workload"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(ROOT / "tests/privileged/data/workload.c")], check=True)
    n, repeat = args.events, args.repeat
    per_stream = (2 * repeat) * n  # every event stays: none is dropped by the bounds
    print(f"load average at the start: {load_average()}")

    (directory / "hosts").mkdir()
    with contextlib.ExitStack() as stack:
        hosts = stack.enter_context(cluster_hosts(directory / "hosts", args.hosts))
        cgroups = [CGROUP_ROOT / f"bpfnb-bench-{os.getpid()}-{i}" for i in range(args.hosts)]
        local = []
        for index, cgroup in enumerate(cgroups):
            cgroup.mkdir()
            stack.callback(cgroup.rmdir)
            include = directory / f"local-include-{index}"
            include.mkdir()
            (include / "host.h").write_text(f"#define HOST_CGROUP {os.stat(cgroup).st_ino}ULL\n")
            prog = stack.enter_context(bpfnb.Program(CELL, cflags=[f"-I{include}"]))
            local.append(prog.stream("events", max_rows=per_stream))

        def start_local(cgroup: Path) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$0" "$1"', str(binary), str(n)]
            )

        cluster = bpfnb.cluster(url_file=hosts.url_file, engines=args.hosts, compression=args.compression)
        stack.callback(cluster.close)
        prog = stack.enter_context(bpfnb.Program(CELL, on="all", name="bench", cflags=[f"-I{HOST_INCLUDE}"]))
        stream = prog.stream("events", max_rows=per_stream, max_bytes=64 * per_stream)
        engines = {host.name: host.engine.pid for host in hosts.hosts if host.engine is not None}
        gathered = {host.name: 0 for host in hosts.hosts}
        assert hosts.controller is not None
        controller = process_tree(hosts.controller.pid)
        local_cpu: list[float] = []
        client_cpu = 0.0
        cluster_cpu = {"engines": 0.0, "controller": 0.0}

        def timed_local(indexes: list[int]) -> tuple[float, float]:
            targets = {i: local[i].received + n for i in indexes}
            run = Run(lambda: [start_local(cgroups[i]) for i in indexes])
            for i, target in targets.items():
                local[i].wait(n=target, seconds=300)
            took, delay, cpu, _ = run.done(len(indexes))
            local_cpu.append(cpu / (len(indexes) * n / 1e6))
            assert all(local[i].received >= t and local[i].lost == 0 for i, t in targets.items())
            return took, delay

        def timed_cluster(names: list[str]) -> tuple[float, float]:
            nonlocal client_cpu
            for name in names:
                gathered[name] += n
            run = Run(lambda: [h.run_workload(binary, str(n)) for h in hosts.hosts if h.name in names],
                      {"engines": [engines[name] for name in names], "controller": controller})
            stream.wait(hosts=dict(gathered), seconds=300)
            took, delay, cpu, watched = run.done(len(names))
            client_cpu += cpu
            for name, seconds in watched.items():
                cluster_cpu[name] += seconds
            return took, delay

        print(f"per host, one at a time ({repeat} pairs of runs each; events/s from the workload's start to its "
              "last event's arrival, and that arrival after the workload's exit):")
        for index, host in enumerate(hosts.hosts):
            pairs = [(timed_local([index]), timed_cluster([host.name])) for _ in range(repeat)]
            ratios = [lt / ct for (lt, _), (ct, _) in pairs]
            print(f"  {host.name}: {n / statistics.median(c for _, (c, _) in pairs):,.0f} events/s against "
                  f"{n / statistics.median(lt for (lt, _), _ in pairs):,.0f} local: "
                  f"{statistics.median(ratios):.0%} of local (pairs: {', '.join(f'{r:.0%}' for r in ratios)}); "
                  f"last event {statistics.median(d for _, (_, d) in pairs) * 1e3:.0f} ms after the exit, "
                  f"local {statistics.median(d for (_, d), _ in pairs) * 1e3:.0f} ms")
        print(f"  load average: {load_average()}")

        names = [host.name for host in hosts.hosts]
        pairs = [(timed_local(list(range(args.hosts))), timed_cluster(names)) for _ in range(repeat)]
        together = args.hosts * n
        print(f"all {args.hosts} hosts at once: {together / statistics.median(c for _, (c, _) in pairs):,.0f} events/s "
              f"in all against {together / statistics.median(lt for (lt, _), _ in pairs):,.0f} for {args.hosts} "
              f"local streams at once: {statistics.median(lt / ct for (lt, _), (ct, _) in pairs):.0%} "
              f"(load average {load_average()})")

        idle = sum(map(process_cpu, engines.values()))
        time.sleep(5)
        idle = (sum(map(process_cpu, engines.values())) - idle) / 5 / len(engines)
        counts = stream.host_counts()
        total = sum(c["rows"] for c in counts.values())
        assert all(c["rows"] == gathered[h] and c["lost"] == 0 and c["dropped"] == 0 for h, c in counts.items()), counts
        cpu = time.process_time()
        frame = stream.df()
        frame_cpu = time.process_time() - cpu
        assert len(frame) == total
        wire = sum(c["wire_bytes"] for c in counts.values())
        print(f"CPU per 1M events: this process gathering {client_cpu / (total / 1e6):.3f} s, the engines sending "
              f"{cluster_cpu['engines'] / (total / 1e6):.3f} s, the controller passing them on "
              f"{cluster_cpu['controller'] / (total / 1e6):.3f} s; a local stream {statistics.median(local_cpu):.3f} s; an engine "
              f"streaming nothing: {idle:.1%} of a CPU. "
              f"One frame of {total:,} rows from {args.hosts} hosts: {frame_cpu:.2f} s CPU "
              f"({frame_cpu / (total / 1e6):.3f} s per 1M)")
        print(f"on the wire: {wire / total:.1f} bytes per event (24-byte events, compression "
              f"{args.compression or 'none'})")
        print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
