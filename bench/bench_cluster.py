"""One stream gathered from a cluster: per-host throughput against a local stream, client CPU, bytes on the wire.

Run as root from the repository: ``.venv/bin/python bench/bench_cluster.py``
(``--events N`` changes the 1M events per host, ``--hosts H`` the 4 hosts,
``--compression lz4`` compresses what engines send).

The hosts are those of the cluster tests (tests/privileged/cluster_hosts.py):
network namespaces of this machine, each with its own hostname and an engine,
a controller on a veth address; the client is this process. Each host runs
tests/privileged/data/workload.c (N getppid() calls) in its own cgroup, and
the cell sends one 24-byte ring-buffer event per call of its own host's
workload (a 64 MiB ring: no event is lost).

Figures:

- local: one workload and a local ``Stream`` in this process; events/s from
  the workload's start to the last event in the stream;
- per host, one host at a time: the same through the cluster, from the
  workload's start to the last event of that host gathered here (goal: at
  least 80% of local);
- all hosts at once: every workload started together (on 2 cores, 4
  producers share the CPU: compare the sum, not each host, with local);
- the client's CPU time (all its threads) per million events gathered, and for
  building the one DataFrame of every host's events;
- bytes received per event (Arrow IPC, as the engines sent them).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "privileged"))

from cluster_hosts import CGROUP_ROOT, HOST_INCLUDE, cluster_hosts  # noqa: E402

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


def local_runs(binary: Path, events: int, directory: Path, *, programs: int, repeat: int) -> tuple[float, float, float]:
    """Local streams in this process, on the same kernel work as the cluster's.

    All engines of the emulated hosts share this kernel, so each event there
    runs ``programs`` copies of the cell (the others filter it out). The local
    figures load as many copies, each with its own cgroup and stream: the
    median events/s of one workload with its stream, this process's CPU per 1M
    events, and the events/s of ``programs`` workloads run at once.
    """
    cgroups = [CGROUP_ROOT / f"bpfnb-bench-{os.getpid()}-{i}" for i in range(programs)]
    with contextlib.ExitStack() as stack:
        streams = []
        for index, cgroup in enumerate(cgroups):
            cgroup.mkdir()
            stack.callback(cgroup.rmdir)
            include = directory / f"local-include-{index}"
            include.mkdir()
            (include / "host.h").write_text(f"#define HOST_CGROUP {os.stat(cgroup).st_ino}ULL\n")
            prog = stack.enter_context(bpfnb.Program(CELL, cflags=[f"-I{include}"]))
            streams.append(prog.stream("events", max_rows=(repeat + 1) * events))

        def start(cgroup: Path) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                ["sh", "-c", f'echo $$ > {cgroup}/cgroup.procs && exec "$0" "$1"', str(binary), str(events)]
            )

        rates, cpus = [], []
        for run in range(1, repeat + 1):
            cpu = time.process_time()
            started = time.monotonic()
            process = start(cgroups[0])
            streams[0].wait(n=run * events, seconds=120)
            rates.append(events / (time.monotonic() - started))
            cpus.append((time.process_time() - cpu) / (events / 1e6))
            process.wait()
        started = time.monotonic()
        processes = [start(cgroup) for cgroup in cgroups]
        for index, stream in enumerate(streams):
            stream.wait(n=(repeat if index == 0 else 0) * events + events, seconds=300)
        together = programs * events / (time.monotonic() - started)
        for process in processes:
            process.wait()
        assert all(s.lost == 0 for s in streams)
        for stream in streams:
            stream.stop()
    return statistics.median(rates), statistics.median(cpus), together


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--compression", default=None, choices=["lz4", "zstd"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each one-host measure (the median is shown)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    binary = directory / "workload"
    subprocess.run(["cc", "-O2", "-o", str(binary), str(ROOT / "tests/privileged/data/workload.c")], check=True)
    n = args.events

    local_rate, local_cpu, local_together = local_runs(binary, n, directory, programs=args.hosts, repeat=args.repeat)
    print(f"local stream ({args.hosts} copies of the cell loaded, as on the emulated hosts' shared kernel): "
          f"{local_rate:,.0f} events/s (median of {args.repeat}), this process's CPU {local_cpu:.2f} s per 1M "
          f"events; {args.hosts} workloads into {args.hosts} local streams at once: {local_together:,.0f} events/s")

    (directory / "hosts").mkdir()
    with cluster_hosts(directory / "hosts", args.hosts) as hosts:
        cluster = bpfnb.cluster(url_file=hosts.url_file, engines=args.hosts, compression=args.compression)
        with bpfnb.Program(CELL, on="all", name="bench", cflags=[f"-I{HOST_INCLUDE}"]) as prog:
            per_host = (args.repeat + 1) * n  # every event stays: none is dropped by the bounds
            stream = prog.stream("events", max_rows=per_host, max_bytes=64 * per_host)
            cpu = time.process_time()
            for host in hosts.hosts:
                rates = []
                for run in range(1, args.repeat + 1):
                    started = time.monotonic()
                    process = host.run_workload(binary, str(n))
                    stream.wait(hosts={host.name: run * n}, seconds=120)
                    rates.append(n / (time.monotonic() - started))
                    process.wait()
                rate = statistics.median(rates)
                print(f"  {host.name} alone: {rate:,.0f} events/s ({rate / local_rate:.0%} of local; "
                      f"runs {', '.join(f'{r:,.0f}' for r in rates)})")
            sequential_cpu = time.process_time() - cpu

            cpu = time.process_time()
            started = time.monotonic()
            processes = [host.run_workload(binary, str(n)) for host in hosts.hosts]
            stream.wait(hosts={h.name: per_host for h in hosts.hosts}, seconds=300)
            took = time.monotonic() - started
            concurrent_cpu = time.process_time() - cpu
            for process in processes:
                process.wait()
            print(f"all {args.hosts} hosts at once: {args.hosts * n / took:,.0f} events/s in all "
                  f"({args.hosts * n / took / local_together:.0%} of {args.hosts} local streams at once), "
                  f"{n / took:,.0f} per host")

            counts = stream.host_counts()
            total = sum(c["rows"] for c in counts.values())
            assert all(c["rows"] == per_host and c["lost"] == 0 and c["dropped"] == 0 for c in counts.values()), counts
            cpu = time.process_time()
            frame = stream.df()
            frame_cpu = time.process_time() - cpu
            assert len(frame) == total
            wire = sum(c["wire_bytes"] for c in counts.values())
            print(f"client CPU: {sequential_cpu / (args.hosts * args.repeat * n / 1e6):.2f} s per 1M events gathered one host "
                  f"at a time, {concurrent_cpu / (args.hosts * n / 1e6):.2f} s all at once; one frame of "
                  f"{total:,} rows from {args.hosts} hosts: {frame_cpu:.2f} s CPU "
                  f"({frame_cpu / (total / 1e6):.2f} s per 1M)")
            print(f"on the wire: {wire / total:.1f} bytes per event (24-byte events, compression "
                  f"{args.compression or 'none'})")
        cluster.close()


if __name__ == "__main__":
    main()
