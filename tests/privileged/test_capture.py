"""Captures of real programs: recorded while they run, read back exactly, anywhere, whatever happened to the recorder.

One BCC program is recorded for the whole module (maps of every kind the
notebooks read, a ring buffer, a perf buffer, a history of its own); the
frames it gave live are compared with what the capture gives back, in this
process and in one that runs as nobody and cannot import BCC.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb import ArgumentError, BpfnbError, CaptureError, NoSuchMapError, Program
from bpfnb.capture import notes
from bpfnb.plot.labels import pid_columns

from ..libbpf_cells import HEADER, LICENSE
from .conftest import _held_prog_ids, kernel_prog_ids

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """
struct event { u32 pid; u64 seq; u64 ts; char comm[16]; };
BPF_ARRAY(sequence, u64, 1);
BPF_HASH(counts, u32, u64);
BPF_PERCPU_HASH(per_cpu, u32, u64);
BPF_HISTOGRAM(dist);
BPF_RINGBUF_OUTPUT(events, 256);
BPF_PERF_OUTPUT(perf_events);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32;
    if (pid != TARGET_TGID) return 0;
    int zero = 0;
    u64 *seq = sequence.lookup(&zero);
    if (!seq) return 0;
    struct event e = {};
    e.pid = pid;
    e.seq = __sync_fetch_and_add(seq, 1);
    e.ts = bpf_ktime_get_ns();
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    counts.increment(pid);
    u64 none = 0;
    u64 *mine = per_cpu.lookup_or_try_init(&pid, &none);
    if (mine) (*mine)++;
    dist.increment(bpf_log2l(e.seq + 1));
    events.ringbuf_output(&e, sizeof(e), 0);
    perf_events.perf_submit(args, &e, sizeof(e));
    return 0;
}
"""

#: The same reads of a live program and of its recording, each giving one frame (as text, for the process
#: that runs as nobody too).
READS_SOURCE = """{
    "ring": lambda p: p.stream("events").df(),
    "perf": lambda p: p.stream("perf_events", time_field="ts").df(),
    "counts": lambda p: p["counts"].df(),
    "per_cpu": lambda p: p["per_cpu"].df(),
    "per_cpu_rows": lambda p: p["per_cpu"].df(percpu="rows"),
    "per_cpu_columns": lambda p: p["per_cpu"].df(percpu="columns"),
    "dist": lambda p: p["dist"].df(),
    "dist_linear": lambda p: p["dist"].df(buckets="linear", step=8),
    "percentiles": lambda p: p["dist"].percentiles(q=(50, 99)),
    "history": lambda p: p["counts"].history(0.2).df(),
}"""
READS: dict[str, Any] = eval(READS_SOURCE)


def emit(calls: int) -> None:
    for _ in range(calls):
        os.getppid()


def public_dir() -> Path:
    """A new directory under /tmp that other users can read (pytest's tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="bpfnb-capture-"))
    directory.chmod(0o755)
    return directory


@pytest.fixture(scope="module")
def recorded() -> Iterator[tuple[Path, dict[str, pd.DataFrame], dict[str, int]]]:
    """Record SOURCE through 5,000 events; the capture, the live frames, the live streams' counters."""
    directory = public_dir()
    with Program(SOURCE, name="probe", cflags=[f"-DTARGET_TGID={os.getpid()}"]) as prog:
        recorder = bpfnb.record(directory / "capture", prog, flush_interval=0.2)
        ring = prog.stream("events")
        perf = prog.stream("perf_events", time_field="ts")
        history = prog["counts"].history(interval=0.2)
        bpfnb.remember("pid", os.getpid())
        emit(3000)
        time.sleep(0.5)
        emit(2000)
        ring.wait(n=5000, seconds=10)
        perf.wait(n=5000, seconds=10)
        history.record()
        history.stop()
        ring.stop()
        perf.stop()
        recorder.stop()
        live = {
            "ring": ring.df(),
            "perf": perf.df(),
            "history": history.df(),
            **{name: read(prog) for name, read in READS.items() if name not in ("ring", "perf", "history")},
        }
        counters = {"received": ring.received, "lost": ring.lost, "perf_received": perf.received}
    yield directory / "capture", live, counters
    subprocess.run(["rm", "-rf", str(directory)], check=True)


def read_all(program: Any) -> dict[str, pd.DataFrame]:
    return {name: read(program) for name, read in READS.items()}


def assert_same(live: dict[str, pd.DataFrame], loaded: dict[str, pd.DataFrame]) -> None:
    assert set(live) == set(loaded)
    for name in live:
        assert len(live[name]), f"{name}: the live frame is empty, the comparison would prove nothing"
        pd.testing.assert_frame_equal(loaded[name], live[name], obj=name)


def test_every_frame_reads_back_exactly(recorded):
    path, live, counters = recorded
    capture = bpfnb.load(path)
    assert capture.state == "recorded"
    program = capture["probe"]
    assert_same(live, read_all(program))
    assert len(live["ring"]) == 5000 and live["ring"]["seq"].tolist() == list(range(5000))
    events = program.stream("events")
    assert (events.received, events.lost, events.dropped, events.not_recorded) == (counters["received"], 0, 0, 0)
    assert program.stream("perf_events").received == counters["perf_received"] == 5000


def test_plots_name_no_pid_of_a_capture_after_this_machines_processes(recorded):
    path, live, _ = recorded
    events = bpfnb.load(path)["probe"].stream("events").df().drop(columns="comm")
    # Live, the pid is this process and plots label it with its name; recorded, it may be anyone's here.
    assert pid_columns(live["ring"].drop(columns="comm"), ["pid"]) == ["pid"] and pid_columns(events, ["pid"]) == []
    assert events[events["pid"] > 0].attrs["recorded"]


def test_remember_gives_back_what_the_recording_kept(recorded):
    path, _, _ = recorded
    capture = bpfnb.load(path)
    assert capture.notes == {"pid": os.getpid()}
    notes.replaying(capture)
    try:
        assert bpfnb.remember("pid", -1) == os.getpid()
        with pytest.raises(CaptureError, match="kept no value called 'other'"):
            bpfnb.remember("other", 1)
    finally:
        notes.replaying(None)
    assert bpfnb.remember("pid", -1) == -1
    with pytest.raises(ArgumentError, match="keeps numbers, strings"):
        bpfnb.remember("x", object())


def test_capture_says_what_program_and_machine_it_holds(recorded):
    path, _, _ = recorded
    capture = bpfnb.load(path)
    program = capture["probe"]
    assert program.source == SOURCE and program.engine == "bcc" and program.state == "recorded"
    assert program.options["cflags"] == [f"-DTARGET_TGID={os.getpid()}"]
    assert [(h.kind, h.target) for h in program.attachments] == [("tracepoint", "syscalls:sys_enter_getppid")]
    assert set(program.map_names()) == {"sequence", "counts", "per_cpu", "dist", "events", "perf_events"}
    assert program.stream_names() == ["events", "perf_events"]
    machine = capture.machine
    assert machine["hostname"] == os.uname().nodename
    assert machine["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert machine["kernel"]["release"] == os.uname().release
    assert len(machine["kernel"]["btf_id"]) == 24 and machine["kernel"]["build_id"]
    assert isinstance(machine["headers"]["matches"], bool)
    assert capture.bpfnb_version == bpfnb.__version__
    start, end = capture.window
    assert start < end <= pd.Timestamp.now(tz="UTC")
    # The time base turns the events' kernel timestamps into the wall-clock times the stream gave.
    events = program.stream("events").df()
    wall = pd.to_datetime(events["ts"].astype("int64") + capture.time_base["monotonic"], utc=True)
    assert (abs(wall - events["time"]) < pd.Timedelta(seconds=1)).all()
    html = capture._repr_html_() + program._repr_html_() + program["dist"]._repr_html_()
    assert "probe" in html and "recorded" in html and "sys_enter_getppid" in html and "dist" in html


LOAD_AS_NOBODY = """
import importlib.abc, os, pickle, sys


class NoBcc(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "bcc" or name.startswith("bcc."):
            raise ImportError("this process may not import bcc")


sys.meta_path.insert(0, NoBcc())
reads = {reads}
import bpfnb

capture = bpfnb.load(sys.argv[1])
frames = {{name: read(capture["probe"]) for name, read in reads.items()}}
# What loads, attaches or reads programs; bpfnb.kernel.processes (pid names from /proc files, for plot
# labels, which percentiles' units pull in) is no part of that.
kernel_side = sorted(
    m for m in sys.modules
    if m == "bcc" or m.startswith(("bpfnb.engines", "bpfnb.kernel.", "bpfnb.program", "bpfnb.maps", "bpfnb.streams"))
    and m != "bpfnb.kernel.processes"
)
with open("/proc/self/status") as f:
    caps = [line.split()[1] for line in f if line.startswith("CapEff")][0]
with open(sys.argv[2], "wb") as out:
    pickle.dump({{"frames": frames, "kernel_side": kernel_side, "euid": os.geteuid(), "caps": caps}}, out)
"""



def run_as_nobody(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    command = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", sys.executable]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
    return subprocess.run([*command, "-c", script, *args], capture_output=True, text=True, cwd="/tmp", env=env, timeout=120)


def test_reads_the_same_as_nobody_without_bcc(recorded, checkout_reachable_by_others):
    path, live, _ = recorded
    out = public_dir()
    out.chmod(0o777)
    try:
        done = run_as_nobody(LOAD_AS_NOBODY.format(reads=READS_SOURCE), str(path), str(out / "frames.pickle"))
        assert done.returncode == 0, done.stderr
        with open(out / "frames.pickle", "rb") as f:
            result = pickle.load(f)
    finally:
        subprocess.run(["rm", "-rf", str(out)], check=True)
    assert result["euid"] != 0 and int(result["caps"], 16) == 0
    assert result["kernel_side"] == []
    assert_same(live, result["frames"])


def test_zip_round_trip(recorded, tmp_path):
    path, live, _ = recorded
    made = bpfnb.load(path).zip(tmp_path / "shared.zip")
    assert made == tmp_path / "shared.zip"
    assert_same(live, read_all(bpfnb.load(made)["probe"]))
    # A zip of the files themselves, without the directory, loads too.
    flat = tmp_path / "flat.zip"
    with zipfile.ZipFile(flat, "w") as archive:
        for file in path.rglob("*"):
            archive.write(file, file.relative_to(path))
    assert_same(live, read_all(bpfnb.load(flat)["probe"]))
    with pytest.raises(ArgumentError, match="already exists"):
        bpfnb.load(path).zip(made)


def test_replay_plays_a_map_and_a_stream_to_their_end(recorded):
    path, live, _ = recorded
    program = bpfnb.load(path)["probe"]
    bars = program["counts"].live(kind="bar", speed=50, interval=0.2)
    rates = program.stream("events").live(speed=50, interval=0.2)
    deadline = time.monotonic() + 30
    while (bars.running or rates.running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not bars.running and not rates.running
    assert bars.data["value"].tolist() == [5000] and bars.png.startswith(b"\x89PNG")
    assert rates.data["all"].sum() > 0  # events per second, in one-second bins


def test_kill_9_mid_recording_leaves_a_capture_up_to_its_last_flush():
    directory = public_dir()
    script = textwrap.dedent(
        f"""
        import os, sys, time, bpfnb
        prog = bpfnb.Program({SOURCE!r}, name="probe", cflags=["-DTARGET_TGID=%d" % os.getpid()])
        stream = prog.stream("events")
        recorder = bpfnb.record(sys.argv[1], prog, flush_interval=0.2)
        sent = 0
        while True:
            for _ in range(1000):
                os.getppid()
            sent += 1000
            if sent == 20000:
                print("sent", sent, flush=True)
            time.sleep(0.002)
        """
    )
    capture_dir = directory / "capture"
    child = subprocess.Popen([sys.executable, "-c", script, str(capture_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().split() == ["sent", "20000"]
        # Once a flush has written those 20,000 events, kill it in the middle of its work.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tables = json.loads((capture_dir / "manifest.json").read_text())["tables"]
            if tables.get("probe/streams/events", {}).get("rows", 0) >= 20000:
                break
            time.sleep(0.05)
        held = _held_prog_ids(str(child.pid))
        assert held, "the recording process holds no program"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        capture = bpfnb.load(capture_dir)
        assert capture.state == "incomplete"
        events = capture["probe"].stream("events").df()
        assert len(events) >= 20000
        assert events["seq"].tolist() == list(range(len(events)))
        # The map's last snapshot before the kill (they are taken every second: it may still be empty).
        assert list(capture["probe"]["counts"].df().columns) == ["key", "value"]
        assert capture["probe"].stream("events").received >= len(events)
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
        subprocess.run(["rm", "-rf", str(directory)], check=True)
    # The kernel frees a killed process's programs (after an RCU grace period).
    deadline = time.monotonic() + 5
    while held & kernel_prog_ids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not held & kernel_prog_ids()


def test_save_writes_what_programs_hold_now(tmp_path, no_leaks):
    with Program(SOURCE, name="probe", cflags=[f"-DTARGET_TGID={os.getpid()}"]) as prog:
        ring = prog.stream("events", max_rows=100)
        history = prog["counts"].history(interval=0.2)
        emit(300)
        ring.wait(n=300, seconds=10)
        history.record()
        capture = bpfnb.save(tmp_path / "snapshot.zip", prog)
        live = {"ring": ring.df(), "counts": prog["counts"].df(), "history": history.df()}
        assert ring.dropped == 200
        ring.stop()
        history.stop()
    assert not (tmp_path / "snapshot").exists() and capture.path == tmp_path / "snapshot.zip"
    program = capture["probe"]
    pd.testing.assert_frame_equal(program.stream("events").df(), live["ring"])
    assert program.stream("events").received == 300 and program.stream("events").dropped_live == 200
    pd.testing.assert_frame_equal(program["counts"].df(), live["counts"])
    pd.testing.assert_frame_equal(program["counts"].history(0.2).df(), live["history"])


def test_rotation_keeps_the_newest_events_within_the_size(tmp_path, no_leaks):
    limit = 1 << 20
    with Program(SOURCE.replace("256", "4096"), name="probe", cflags=[f"-DTARGET_TGID={os.getpid()}"]) as prog:
        recorder = bpfnb.record(tmp_path / "capture", prog, flush_interval=0.1, max_bytes=limit)
        stream = prog.stream("events")
        for _ in range(40):
            emit(10_000)
            stream.wait(n=stream.received + 10_000, seconds=10)
            time.sleep(0.1)
        stream.stop()
        capture = recorder.stop()
    table = capture.files.manifest["tables"]["probe/streams/events"]
    events = capture["probe"].stream("events")
    frame = events.df()
    assert table["rotated_rows"] > 0 and events.not_recorded >= table["rotated_rows"]
    assert len(frame) + events.not_recorded == events.received == 400_000
    # What is left is the newest events, without a gap.
    assert frame["seq"].tolist() == list(range(400_000 - len(frame), 400_000))
    sizes = sum(f.stat().st_size for f in (tmp_path / "capture").rglob("*.parquet"))
    assert sizes <= 2 * limit


def test_memory_bound_counts_what_it_cannot_keep(tmp_path, no_leaks):
    with Program(SOURCE.replace("256", "4096"), name="probe", cflags=[f"-DTARGET_TGID={os.getpid()}"]) as prog:
        recorder = bpfnb.record(tmp_path / "capture", prog, flush_interval=5, memory_bytes=64 * 1024)
        stream = prog.stream("events")
        emit(100_000)
        stream.wait(n=100_000, seconds=20)
        stream.stop()
        capture = recorder.stop()
    events = capture["probe"].stream("events")
    assert events.received == 100_000 and events.not_recorded > 0
    assert len(events.df()) + events.not_recorded == 100_000


LIBBPF_CELL = HEADER + r"""
struct event { u32 pid; u64 seq; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 20); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, u32); __type(value, u64); } counts SEC(".maps");
u64 next_seq = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != TARGET)
        return 0;
    u64 one = 1, *count = bpf_map_lookup_elem(&counts, &pid);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
    struct event *e = bpf_ringbuf_reserve(&rb, sizeof(struct event), 0);
    if (!e)
        return 0;
    e->pid = pid;
    e->seq = __sync_fetch_and_add(&next_seq, 1);
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
""" + LICENSE


def test_a_libbpf_program_records_through_the_same_interface(tmp_path, no_leaks):
    with Program(LIBBPF_CELL, name="core", cflags=[f"-DTARGET={os.getpid()}"]) as prog:
        assert prog.engine == "libbpf"
        recorder = bpfnb.record(tmp_path / "capture", prog, flush_interval=0.2)
        stream = prog.stream("rb")
        emit(1000)
        stream.wait(n=1000, seconds=10)
        stream.stop()
        capture = recorder.stop()
        live = {"rb": stream.df(), "counts": prog["counts"].df()}
    program = capture["core"]
    assert program.engine == "libbpf" and len(live["rb"]) == 1000
    pd.testing.assert_frame_equal(program.stream("rb").df(), live["rb"])
    pd.testing.assert_frame_equal(program["counts"].df(), live["counts"])


def test_mistakes_are_explained(recorded, tmp_path, no_leaks):
    path, _, _ = recorded
    program = bpfnb.load(path)["probe"]
    with pytest.raises(NoSuchMapError, match="no buffer 'nope'"):
        program.stream("nope")
    with pytest.raises(NoSuchMapError, match="no map 'nope'"):
        program["nope"]
    with pytest.raises(CaptureError, match="no program 'nope'"):
        bpfnb.load(path)["nope"]
    with pytest.raises(CaptureError, match="no capture at"):
        bpfnb.load(tmp_path / "missing")
    with pytest.raises(ArgumentError, match="already exists"):
        bpfnb.record(path)
    with pytest.raises(bpfnb.DecodeError, match="the machine that recorded"):
        program["counts"].df(decode={"key": "ksym"})
    prog = Program(SOURCE, name="probe", cflags=[f"-DTARGET_TGID={os.getpid()}"])
    prog.detach()
    with pytest.raises(ArgumentError, match="detached"):
        bpfnb.record(tmp_path / "c", prog)
    assert not (tmp_path / "c").exists()


COUNTER_CELL = """%%bpf counter --cflags=-DTARGET_TGID={pid}
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid == TARGET_TGID) counts.increment(pid);
    return 0;
}}
"""
NOTEBOOK = [
    COUNTER_CELL.format(pid=os.getpid()),
    "import os\nfor _ in range(100):\n    os.getppid()",
    "before = counter['counts'].df()",
    "counter['counts'].clear()\nfor _ in range(7):\n    os.getppid()",
    "after = counter['counts'].df()",
]


@pytest.fixture
def shell() -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("unload_ext", "bpfnb")
    InteractiveShell.clear_instance()


def run_cells(shell: InteractiveShell, cells: list[str]) -> None:
    for cell in cells:
        result = shell.run_cell(cell)
        assert result.success, (cell, result.error_before_exec or result.error_in_exec)


def test_a_recorded_notebook_replays_cell_by_cell(shell, tmp_path, no_leaks):
    recorder = shell.run_line_magic("bpf", f"record {tmp_path / 'nb'}")
    assert isinstance(recorder, bpfnb.Recorder) and recorder.running
    run_cells(shell, NOTEBOOK)
    listed = repr(shell.run_line_magic("bpf", "ls"))
    assert re.search(r'counter\["nb"\] +recording +recording', listed), listed
    live = {name: shell.user_ns[name] for name in ("before", "after")}
    assert live["before"]["value"].tolist() == [100] and live["after"]["value"].tolist() == [7]
    capture = shell.run_line_magic("bpf", "record stop")
    assert isinstance(capture, bpfnb.Capture) and capture.state == "recorded"
    shell.run_line_magic("bpf", "detach --all")

    # Replayed: the cell binds the recorded program, and each read sees the map as the same cell did.
    choice = shell.run_line_magic("bpf", f"replay {tmp_path / 'nb'}")
    assert repr(choice).startswith(f"Replaying {tmp_path / 'nb'}: the notebook asked for the recording")
    run_cells(shell, NOTEBOOK)
    assert shell.user_ns["counter"].state == "recorded"
    for name, frame in live.items():
        pd.testing.assert_frame_equal(shell.user_ns[name], frame)
    listing = repr(shell.run_line_magic("bpf", "ls"))
    assert "counter" in listing and "recorded" in listing
    with pytest.raises(BpfnbError, match="replays a capture"):
        shell.run_line_magic("bpf", f"record {tmp_path / 'again'}")


def test_replay_falls_back_only_where_programs_cannot_load(shell, tmp_path):
    choice = shell.run_line_magic("bpf", f"replay {tmp_path / 'none.zip'} --fallback")
    # Root here: the notebook runs live, and the capture is not even opened.
    assert repr(choice).startswith("Live: this kernel can load BPF programs")
    with pytest.raises(CaptureError, match="no capture at"):
        shell.run_line_magic("bpf", f"replay {tmp_path / 'none.zip'}")


BPFTRACE_SCRIPT = """\
tracepoint:syscalls:sys_enter_getppid /pid == {pid}/ {{
    @calls[comm] = count();
    @seq = @seq + 1;
    if (@seq % 100 == 0) {{ printf("hundred n=%d\\n", @seq); }}
}}
"""


@pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make test installs it)")
def test_a_bpftrace_program_records_its_maps_and_what_it_prints(tmp_path):
    with Program(BPFTRACE_SCRIPT.format(pid=os.getpid()), engine="bpftrace", name="bt", interval_ms=100) as prog:
        recorder = bpfnb.record(tmp_path / "capture", prog, flush_interval=0.2, snapshot_interval=0.2)
        emit(1000)
        printed = prog.stream().wait(n=10, seconds=20)
        calls = prog["@calls"].wait()
        capture = recorder.stop()
        live = {"printed": printed.df(), "calls": calls.df()}
    program = capture["bt"]
    assert program.engine == "bpftrace" and len(live["printed"]) == 10
    pd.testing.assert_frame_equal(program.stream().df(), live["printed"])
    assert program["@calls"].df()["count"].tolist() == live["calls"]["count"].tolist() == [1000]
