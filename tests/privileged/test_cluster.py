"""One cell on many hosts: engines in network namespaces of this machine, each host with its own workload.

The hosts (see cluster_hosts.py) are network namespaces with their own
hostnames, their engines talk to a controller on a veth address, and each
cell counts only its own host's workload (by the workload's cgroup), as a
real host only sees its own processes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb.remote.connection import Cluster as BpfnbCluster

from .cluster_hosts import HOST_INCLUDE, Cluster, Host, cluster_hosts
from .conftest import _held_prog_ids

LOST_AFTER = 2.0
CELL = r"""
#include "host.h"
struct event { u64 ts; u32 pid; u32 seq; };
BPF_RINGBUF_OUTPUT(events, 256);
BPF_HASH(counts, u32, u64);
BPF_HISTOGRAM(dist);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_cgroup_id() != HOST_CGROUP) return 0;
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    dist.increment(bpf_log2l(pid));
    struct event e = {.ts = bpf_ktime_get_boot_ns(), .pid = pid};
    events.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""
CFLAGS = [f"-I{HOST_INCLUDE}"]
#: The same counts in bpftrace: each host's engine sees its own workload's cgroup at that path.
BPFTRACE = """
tracepoint:syscalls:sys_enter_getppid /cgroup == cgroupid("/run/bpfnb-test-host/cgroup")/ {
    @calls[pid] = count(); @all = count(); @slots = lhist(2, 0, 4, 1);
}
"""


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster_hosts(tmp_path_factory.mktemp("cluster"), 3) as emulated:
        yield emulated


@pytest.fixture(scope="module")
def cluster(hosts: Cluster) -> Iterator[BpfnbCluster]:
    connected = bpfnb.cluster(url_file=hosts.url_file, engines=len(hosts.hosts), lost_after=LOST_AFTER)
    yield connected
    connected.close()


def run(host: Host, binary: Path, calls: int) -> int:
    """Run the workload on ``host`` to its end; return its pid."""
    process = host.run_workload(binary, str(calls))
    assert process.wait() == 0
    return process.pid


def engine_prog_ids(host: Host) -> set[int]:
    """Programs the host's engine process holds (nsenter, unshare and sh exec it: it keeps their pid)."""
    assert host.engine is not None
    return _held_prog_ids(str(host.engine.pid))


def loaded_prog_ids() -> set[int]:
    """Every program the kernel holds, whoever holds it."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], check=True, capture_output=True, text=True).stdout
    return {p["id"] for p in json.loads(out or "[]")}


def test_engines_are_grouped_into_hosts_by_hostname_and_boot_id(hosts, cluster):
    assert list(cluster.hosts) == ["h1", "h2", "h3"]
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert {h.boot_id for h in cluster.hosts.values()} == {boot_id}
    # All engines share this machine's clock: the estimated skew is within its own bound.
    for host in cluster.hosts.values():
        assert abs(host.skew_ns) <= host.skew_error_ns + 1_000_000
    # A second engine on h1 (same hostname, same boot) is a spare of the same host.
    extra = hosts.start_engine(hosts.hosts[0], keep=True)
    try:
        wait_for(lambda: len(cluster.client.ids) == 4, "the second engine on h1 to register")
        assert list(cluster.refresh()) == ["h1", "h2", "h3"]
        assert len(cluster.hosts["h1"].engines) == 2
        assert "h1" in repr(cluster) and "h1" in cluster._repr_html_()
    finally:
        extra.send_signal(signal.SIGKILL)
        extra.wait()
    wait_for(lambda: len(cluster.refresh()["h1"].engines) == 1, "the spare engine to leave")


def test_one_frame_from_every_host_with_exact_counts(hosts, cluster, workload):
    calls = {"h1": 1000, "h2": 2000, "h3": 3000}
    started = pd.Timestamp.now(tz="UTC")
    with bpfnb.Program(CELL, on="all", name="lat", cflags=CFLAGS) as lat:
        assert isinstance(lat, bpfnb.ClusterProgram) and lat.running_hosts == ["h1", "h2", "h3"]
        events = lat.stream("events", time_field="ts", time_clock="boottime")
        pids = {h.name: run(h, workload, calls[h.name]) for h in hosts.hosts}
        events.wait(hosts=calls, seconds=30)
        frame = events.df()
        assert frame.groupby("host", observed=True).size().to_dict() == calls
        assert (frame.groupby("host", observed=True)["pid"].unique().map(list).to_dict()
                == {h: [p] for h, p in pids.items()})
        # Wall-clock times, converted on each host, between the start and now, in order across hosts.
        assert frame["time"].between(started, pd.Timestamp.now(tz="UTC")).all()
        assert frame["time"].is_monotonic_increasing
        assert events.lost == 0 and events.dropped == 0

        counts = lat["counts"].df()
        assert list(counts.columns) == ["host", "key", "value"]
        assert {(r.host, r.key): r.value for r in counts.itertuples()} == {(h, pids[h]): calls[h] for h in calls}
        assert lat["counts"].df(query=f"key == {pids['h2']}")["host"].tolist() == ["h2"]
        assert lat["counts"].df(top=1, merge="sum")["value"].tolist() == [3000]

        dist = lat["dist"].df(merge="sum")
        expected: dict[int, int] = {}
        for host, pid in pids.items():
            expected[pid.bit_length()] = expected.get(pid.bit_length(), 0) + calls[host]
        assert dict(zip(dist.loc[dist["count"] > 0, "slot"], dist.loc[dist["count"] > 0, "count"])) == expected
        per_host = lat["dist"].df()
        assert per_host.groupby("host", observed=True)["count"].sum().to_dict() == calls

        table = lat.hosts
        assert [table[h]["state"] for h in calls] == ["running"] * 3
        assert {h: table[h]["rows"] for h in calls} == calls
        assert "h3" in repr(lat) and "running on 3 of 3 hosts" in lat._repr_html_()
    assert lat.closed and not events.running


def test_live_plot_of_the_merged_histogram(hosts, cluster, workload):
    from bpfnb import live as _live

    with bpfnb.Program(CELL, on="all", name="live_lat", cflags=CFLAGS) as lat:
        widget = lat["dist"].live("hist", interval=0.2)
        pids = [run(h, workload, 100 * h.index) for h in hosts.hosts]
        slots = {p.bit_length() for p in pids}

        def plotted() -> int:
            if "slot" not in widget.data.columns:
                return 0
            return int(widget.data.loc[widget.data["slot"].isin(slots), "count"].sum())

        wait_for(lambda: plotted() == 600, "the three hosts' 600 calls in the merged plot")
        assert isinstance(widget, _live.Live)
    assert not widget.running


def test_a_cell_failing_on_some_hosts_runs_on_the_others_unless_strict(hosts, cluster):
    (hosts.hosts[2].include / "only_h3.h").write_text("#define ONLY_H3 1\n")
    source = '#include "only_h3.h"\n' + CELL
    before = {h.name: engine_prog_ids(h) for h in hosts.hosts}
    with bpfnb.Program(source, on="all", name="partial", cflags=CFLAGS) as partial:
        assert partial.running_hosts == ["h3"]
        assert set(partial.failures) == {"h1", "h2"}
        assert all("CompileError" in why and "only_h3.h" in why for why in partial.failures.values())
        html = partial._repr_html_()
        assert "Failed on 2 hosts" in html and "only_h3.h" in html
    with pytest.raises(bpfnb.ClusterError, match="with strict it runs nowhere") as raised:
        bpfnb.Program(source, on="all", name="strict", cflags=CFLAGS, strict=True)
    assert "h1" in raised.value.details and "only_h3.h" in raised.value.details
    wait_for(lambda: {h.name: engine_prog_ids(h) for h in hosts.hosts} == before, "no program left on any engine")
    with pytest.raises(bpfnb.ArgumentError, match="no host named 'h9'"):
        bpfnb.Program(CELL, on="h1,h9", cflags=CFLAGS)
    with pytest.raises(bpfnb.ClusterError, match="loaded on no host"):
        bpfnb.Program("int broken(void *ctx) { return undefined; }", on="h1,h2")


def test_detach_reaches_every_host_and_leaves_no_program(hosts, cluster):
    before = {h.name: engine_prog_ids(h) for h in hosts.hosts}
    lat = bpfnb.Program(CELL, on="h1,h2", name="detached", cflags=CFLAGS)
    loaded = {h.name: engine_prog_ids(h) - before[h.name] for h in hosts.hosts}
    assert loaded["h1"] and loaded["h2"] and not loaded["h3"]
    lat.detach()
    lat.detach()  # idempotent
    wait_for(lambda: {h.name: engine_prog_ids(h) for h in hosts.hosts} == before, "the programs to be released")
    with pytest.raises(bpfnb.BpfnbError, match="detached"):
        lat["counts"]


def test_a_link_cut_marks_the_host_lost_and_it_resumes_when_restored(hosts, cluster, workload):
    h1, h2 = hosts.hosts[0], hosts.hosts[1]
    with bpfnb.Program(CELL, on="h1,h2", name="cut", cflags=CFLAGS) as lat:
        events = lat.stream("events")
        hosts.cut(h2)
        try:
            run(h2, workload, 500)  # its engine keeps consuming while nobody can ask for the rows
            run(h1, workload, 700)
            wait_for(lambda: lat.state_of("h2").state == "lost", "h2 to be marked lost")
            events.wait(hosts={"h1": 700}, seconds=30)
            assert events.host_counts()["h1"]["rows"] == 700  # the others go on
            assert lat.hosts["h2"]["state"] == "lost"
        finally:
            hosts.cut(h2, up=True)
        wait_for(lambda: lat.state_of("h2").state == "running", "h2 to answer again", timeout=60)
        events.wait(hosts={"h1": 700, "h2": 500}, seconds=30)
        frame = events.df()
        assert frame.groupby("host", observed=True).size().to_dict() == {"h1": 700, "h2": 500}
        assert "answered again" in lat.hosts["h2"]["note"]


def test_a_killed_engine_is_lost_its_rows_kept_and_it_can_be_reloaded(hosts, cluster, workload):
    h1, h3 = hosts.hosts[0], hosts.hosts[2]
    with bpfnb.Program(CELL, on="all", name="killed", cflags=CFLAGS) as lat:
        events = lat.stream("events")
        run(h3, workload, 300)
        events.wait(hosts={"h3": 300}, seconds=30)
        held = engine_prog_ids(h3)
        assert held
        hosts.kill_engine(h3)
        run(h1, workload, 400)
        wait_for(lambda: lat.state_of("h3").state == "lost", "h3 to be marked lost")
        events.wait(hosts={"h1": 400}, seconds=30)
        frame = events.df()
        assert frame.groupby("host", observed=True).size().to_dict() == {"h1": 400, "h3": 300}
        assert lat["counts"].df().attrs["missing"] == ["h3"]
        # The kernel released what the killed engine held.
        wait_for(lambda: not held & loaded_prog_ids(), "the killed engine's programs to be freed")

        hosts.start_engine(h3)
        wait_for(lambda: lat.hosts["h3"]["state"] == "back", "h3's new engine to be noticed")
        assert lat.reload() == ["h3"]
        assert lat.hosts["h3"]["state"] == "running"
        run(h3, workload, 200)
        events.wait(hosts={"h1": 400, "h3": 500}, seconds=30)
        assert events.df().groupby("host", observed=True).size().to_dict() == {"h1": 400, "h3": 500}


def test_magics_connect_load_on_hosts_and_detach(hosts, cluster, workload):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    try:
        status = shell.run_line_magic("bpf", f"cluster connect --url-file {hosts.url_file} -n 3")
        assert list(status.hosts) == ["h1", "h2", "h3"]
        result = shell.run_cell(f"%%bpf magic_lat --on h1,h3 --cflags {CFLAGS[0]}\n{CELL}")
        assert result.success, result.error_in_exec
        lat = shell.user_ns["magic_lat"]
        assert lat.running_hosts == ["h1", "h3"]
        pid = run(hosts.hosts[2], workload, 250)
        wait_for(lambda: len(lat["counts"].df()) == 1, "h3's count")
        assert lat["counts"].df()[["host", "key", "value"]].values.tolist() == [["h3", pid, 250]]
        assert len(lat["counts"]) == 1  # counted on each host
        lat.stream("events").wait(hosts={"h3": 250}, seconds=30)  # they waited in h3's ring buffer
        listing = shell.run_line_magic("bpf", "ls")
        rows = {row.name: row for row in listing.rows}
        assert rows["magic_lat"].state == "running on 2 of 2 hosts" and "maps counts, dist, events" in rows["magic_lat"].details
        assert rows['magic_lat["events"]'].kind == "stream (ring buffer) on 2 hosts" and rows['magic_lat["events"]'].rows == 250
        assert "magic_lat" in listing._repr_html_()
        shell.run_line_magic("bpf", "detach magic_lat")
        assert lat.closed
        failed = shell.run_cell(f"%%bpf strict_lat --on h9 --cflags {CFLAGS[0]}\n{CELL}")
        assert isinstance(failed.error_in_exec, bpfnb.ArgumentError)
        if shutil.which("bpftrace"):
            assert shell.run_cell(f"%%bpftrace magic_bt --on h2 --interval 200\n{BPFTRACE}").success
            bt = shell.user_ns["magic_bt"]
            assert bt.running_hosts == ["h2"] and bt.engine == "bpftrace"
            pid = run(hosts.hosts[1], workload, 50)
            wait_for(lambda: bt["@calls"].df().values.tolist() == [["h2", pid, 50]], "h2's bpftrace count")
            shell.run_line_magic("bpf", "detach magic_bt")
            assert bt.closed
    finally:
        shell.run_line_magic("unload_ext", "bpfnb")
        InteractiveShell.clear_instance()


def test_a_workload_of_many_events_is_gathered_whole(hosts, cluster, workload):
    calls = 100_000
    with bpfnb.Program(CELL.replace("events, 256", "events, 4096"), on="all", name="many", cflags=CFLAGS) as lat:
        events = lat.stream("events", batch_rows=16_384)
        for host in hosts.hosts:
            run(host, workload, calls)
        events.wait(hosts={h.name: calls for h in hosts.hosts}, seconds=60)
        counts = events.host_counts()
        for host in hosts.hosts:
            got = counts[host.name]
            assert got["rows"] + got["lost"] + got["dropped"] == calls, got
            # The records as the kernel wrote them, and a few facts per request.
            assert 16 <= got["wire_bytes"] / got["rows"] < 17
        frame = events.df(sort=False)
        assert np.array_equal(frame.groupby("host", observed=True).size().to_numpy(),
                              [counts[h.name]["rows"] for h in hosts.hosts])


def test_a_recording_across_hosts_is_one_capture_with_a_host_column(hosts, cluster, workload, tmp_path):
    calls = {"h1": 400, "h2": 800, "h3": 1200}
    with bpfnb.Program(CELL, on="all", name="rec", cflags=CFLAGS) as rec:
        recorder = bpfnb.record(tmp_path / "cluster-capture", rec, snapshot_interval=0.2)
        events = rec.stream("events", time_field="ts", time_clock="boottime")
        pids = {h.name: run(h, workload, calls[h.name]) for h in hosts.hosts}
        events.wait(hosts=calls, seconds=30)
        capture = recorder.stop()
        snapshot = bpfnb.save(tmp_path / "cluster-snapshot.zip", rec)["rec"]
    # A one-off save holds what the stream and the maps hold now, host by host.
    assert snapshot.stream("events").df().groupby("host").size().to_dict() == calls
    assert dict(zip(snapshot.stream("events").hosts["host"], snapshot.stream("events").hosts["lost"])) == dict.fromkeys(calls, 0)
    assert snapshot["counts"].df(merge="sum")["value"].sum() == sum(calls.values())
    program = capture["rec"]
    assert program.hosts is not None and program.hosts["host"].tolist() == ["h1", "h2", "h3"]
    assert program.hosts["state"].tolist() == ["running"] * 3 and "3 hosts" in program._repr_html_()

    counts = program["counts"].df()
    assert list(counts.columns) == ["host", "key", "value"]
    assert {(r.host, r.key): r.value for r in counts.itertuples()} == {(h, pids[h]): calls[h] for h in calls}
    assert program["counts"].df(merge="sum")["value"].sum() == sum(calls.values())
    dist = program["dist"].df(merge="sum")
    expected: dict[int, int] = {}
    for host, pid in pids.items():
        expected[pid.bit_length()] = expected.get(pid.bit_length(), 0) + calls[host]
    assert dict(zip(dist.loc[dist["count"] > 0, "slot"], dist.loc[dist["count"] > 0, "count"])) == expected
    # Snapshots over time, per host: the last one of each host holds its whole count.
    history = program["counts"].history().df()
    assert history.groupby("host")["value"].max().to_dict() == calls

    stream = program.stream("events")
    frame = stream.df()
    assert frame.columns.tolist()[:2] == ["host", "time"]
    assert frame.groupby("host").size().to_dict() == calls and frame["time"].is_monotonic_increasing
    assert stream.received == sum(calls.values()) and stream.lost == 0 and stream.not_recorded == 0
    assert stream.hosts is not None and dict(zip(stream.hosts["host"], stream.hosts["rows"])) == calls
    with pytest.raises(bpfnb.ArgumentError, match="merge"):
        program["counts"].df(merge="max")


def test_record_magic_follows_a_cell_loaded_on_hosts(hosts, cluster, workload, tmp_path):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    try:
        shell.run_line_magic("bpf", f"cluster connect --url-file {hosts.url_file} -n 3")
        shell.run_line_magic("bpf", f"record {tmp_path / 'magic-capture'}")
        assert shell.run_cell(f"%%bpf rec_magic --on h2 --cflags {CFLAGS[0]}\n{CELL}").success
        pid = run(hosts.hosts[1], workload, 300)
        lat = shell.user_ns["rec_magic"]
        wait_for(lambda: len(lat["counts"].df()) == 1, "h2's count")
        capture = shell.run_line_magic("bpf", "record stop")
        shell.run_line_magic("bpf", "detach rec_magic")
    finally:
        shell.run_line_magic("unload_ext", "bpfnb")
        InteractiveShell.clear_instance()
    recorded = bpfnb.load(capture.path)["rec_magic"]
    assert recorded.hosts is not None and recorded.hosts["host"].tolist() == ["h2"]
    assert recorded["counts"].df().values.tolist() == [["h2", pid, 300]]


PERF_CELL = r"""
#include "host.h"
struct event { u64 ts; u32 pid; s32 err; u8 flag; };  /* 7 bytes of padding at the end */
BPF_PERF_OUTPUT(events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    if (bpf_get_current_cgroup_id() != HOST_CGROUP) return 0;
    struct event e = {.ts = bpf_ktime_get_boot_ns(), .pid = bpf_get_current_pid_tgid() >> 32, .err = -2, .flag = 0xab};
    events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_perf_buffer_events_decoded_on_their_hosts(hosts, cluster, workload, compression, monkeypatch):
    monkeypatch.setattr(cluster, "compression", compression)
    calls = {"h1": 3000, "h2": 5000}
    started = pd.Timestamp.now(tz="UTC")
    with bpfnb.Program(PERF_CELL, on="h1,h2", name="perf", cflags=CFLAGS) as prog:
        events = prog.stream("events", time_field="ts", time_clock="boottime", decode={"err": "errno", "ts": "boottime"})
        pids = {h.name: run(h, workload, calls[h.name]) for h in hosts.hosts[:2]}
        events.wait(hosts=calls, seconds=30)
        frame = events.df()
    assert frame.columns.tolist() == ["host", "time", "cpu", "ts", "ts_raw", "pid", "err", "err_raw", "flag"]
    assert frame.groupby("host", observed=True).size().to_dict() == calls
    assert {h: set(g) for h, g in frame.groupby("host", observed=True)["pid"]} == {h: {p} for h, p in pids.items()}
    assert (frame["err"] == "ENOENT").all() and (frame["err_raw"] == -2).all() and (frame["flag"] == 0xAB).all()
    assert frame["cpu"].isin(range(os.cpu_count() or 1)).all()
    # Both the stream's time and the decoded field are wall clock, converted on each host.
    assert frame["time"].between(started, pd.Timestamp.now(tz="UTC")).all() and frame["time"].is_monotonic_increasing
    assert ((frame["time"] - frame["ts"]).abs() < pd.Timedelta(1, "ms")).all()


def bpftrace_children(host: Host) -> set[int]:
    """The bpftrace processes ``host``'s engine runs."""
    assert host.engine is not None
    found = set()
    for task in Path(f"/proc/{host.engine.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if Path(f"/proc/{child}/comm").read_text().strip() == "bpftrace":
                found.add(int(child))
    return found


@pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make test installs it)")
def test_a_bpftrace_script_on_every_host_gathers_its_maps(hosts, cluster, workload):
    calls = {"h1": 300, "h2": 500, "h3": 700}
    with bpfnb.Program(BPFTRACE, engine="bpftrace", on="all", name="bt", interval_ms=200) as bt:
        assert bt.engine == "bpftrace" and bt.running_hosts == list(calls)
        children = {h.name: bpftrace_children(h) for h in hosts.hosts}
        assert all(len(c) == 1 for c in children.values())
        pids = {h.name: run(h, workload, calls[h.name]) for h in hosts.hosts}
        wait_for(lambda: bt["@all"].df(merge="sum")["count"].tolist() == [sum(calls.values())], "every host's report")
        frame = bt["@calls"].df()
        assert list(frame.columns) == ["host", "pid", "count"]
        assert {(r.host, r.pid): r.count for r in frame.itertuples()} == {(h, pids[h]): calls[h] for h in calls}
        assert bt["@calls"].df(top=1, merge="sum")["count"].tolist() == [700]
        slots = bt["@slots"].df(merge="sum")
        assert slots.loc[slots["count"] > 0, ["lo", "count"]].values.tolist() == [[2, sum(calls.values())]]
        with pytest.raises(bpfnb.ArgumentError, match="printf.*not gathered across a cluster"):
            bt.stream()
    # Detached everywhere: each engine's bpftrace is gone, and with it its programs.
    wait_for(lambda: not any(bpftrace_children(h) for h in hosts.hosts), "every host's bpftrace to exit")
    assert not any(Path(f"/proc/{pid}").exists() for c in children.values() for pid in c)


def test_cluster_start_uses_ipyparallels_launchers_and_stop_ends_the_engines(tmp_path, monkeypatch, workload):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    try:
        started = shell.run_line_magic("bpf", "cluster start -n 2 --profile bpfnbtest")
        assert len(started.hosts) == 1 and len(next(iter(started.hosts.values())).engines) == 2
        assert shell.run_cell("%%bpf local_lat --on all\n" + CELL.replace('#include "host.h"', "#define HOST_CGROUP 0ULL")).success
        lat = shell.user_ns["local_lat"]
        pids = _engine_pids(started)
        held = set().union(*(_held_prog_ids(str(pid)) for pid in pids))
        assert held and lat.running_hosts == list(started.hosts)
        shell.run_line_magic("bpf", "cluster stop")
        assert lat.closed
        wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), "the engines to exit")
        wait_for(lambda: not held & loaded_prog_ids(), "the engines' programs to go with them")
    finally:
        shell.run_line_magic("unload_ext", "bpfnb")
        InteractiveShell.clear_instance()


def _engine_pids(started: BpfnbCluster) -> list[int]:
    return [int(facts["pid"]) for facts in started._known.values()]
