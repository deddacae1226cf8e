"""Live widgets drawing real maps and streams filled by a real tracepoint."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import nbformat
import pytest
from nbclient import NotebookClient

import bpfnb
from bpfnb import live as _live

PROGRAM = r"""
struct event { u32 pid; u64 ts; char comm[16]; };
struct stack_key { u32 pid; int stack_id; };
BPF_HASH(counts, u32, u64);
BPF_HISTOGRAM(dist);
BPF_RINGBUF_OUTPUT(events, 64);
BPF_STACK_TRACE(stack_traces, 1024);
BPF_HASH(stack_counts, struct stack_key, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    struct stack_key key = {.pid = pid, .stack_id = stack_traces.get_stackid(args, 0)};
    stack_counts.increment(key);
    dist.increment(bpf_log2l(pid));
    struct event e = {};
    e.pid = pid;
    e.ts = bpf_ktime_get_ns();
    bpf_get_current_comm(&e.comm, sizeof(e.comm));
    events.ringbuf_output(&e, sizeof(e), 0);
    return 0;
}
"""

WORKLOAD = "import os, sys\nfor _ in range(int(sys.argv[1])): os.getppid()\nprint(os.getpid())"


def workload(calls: int) -> int:
    """Run a process making ``calls`` getppid() syscalls; return its pid."""
    done = subprocess.run([sys.executable, "-c", WORKLOAD, str(calls)], check=True, capture_output=True, text=True)
    return int(done.stdout)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def bar_value(widget: _live.Live, pid: int) -> float | None:
    rows = widget.data[widget.data["label"] == str(pid)]
    return None if rows.empty else float(rows["value"].iloc[0])


def live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bpfnb-live")]


@pytest.fixture
def prog(no_leaks):
    program = bpfnb.Program(PROGRAM, name="live_test")
    yield program
    program.detach()
    assert not live_threads()


def test_bar_follows_the_map_and_pause_holds_the_frame(prog):
    widget = _live.live(prog["counts"], kind="bar", interval=0.2, top=1000)
    first_png = widget.png
    pid = workload(300)
    wait_for(lambda: bar_value(widget, pid) == 300, "the workload's 300 calls in the plot")
    assert widget.png != first_png and widget.png.startswith(b"\x89PNG")
    assert widget.children[0].value == widget.png  # the Image model carries the frame

    widget.pause()
    frames, data = widget.frames, widget.data.copy()
    paused_pid = workload(200)
    time.sleep(4 * widget.interval)
    assert widget.frames == frames
    assert widget.data.equals(data)
    assert "paused" in widget.children[2].value

    widget.resume()
    wait_for(lambda: bar_value(widget, paused_pid) == 200, "the calls made while paused, after resuming")
    widget.stop()
    assert not widget.running and not live_threads()
    assert "stopped" in widget.children[2].value
    assert all(control.disabled for control in widget.children[1].children)


def test_top_k_control_changes_the_plotted_rows(prog):
    for calls in (10, 20, 30):
        workload(calls)
    widget = _live.live(prog["counts"], kind="bar", interval=0.2, top=3)
    wait_for(lambda: len(widget.data) == 3, "three bars")
    widget.top = 2
    wait_for(lambda: len(widget.data) == 2, "two bars after changing top-k")
    assert widget.data["value"].is_monotonic_decreasing
    widget.stop()


def test_histogram_counts_land_in_the_bucket_of_the_value(prog):
    widget = _live.live(prog["dist"], kind="hist", interval=0.2)
    pid = workload(500)
    slot = pid.bit_length()  # bpf_log2l(v) + 1 for v > 0: BCC's slot of v

    def bucket_count() -> int:
        rows = widget.data[widget.data["slot"] == slot]
        return int(rows["count"].iloc[0]) if len(rows) else 0

    wait_for(lambda: bucket_count() >= 500, "the workload's calls in its log2 bucket")
    row = widget.data[widget.data["slot"] == slot].iloc[0]
    assert row["lo"] <= pid <= row["hi"]
    widget.stop()


def test_heatmap_draws_the_histogram_history(prog):
    widget = _live.live(prog["dist"], kind="heatmap", interval=0.2)
    wait_for(lambda: "delta" in widget.data.columns, "the history's first snapshot")
    pid = workload(700)
    slot = pid.bit_length()

    def recorded() -> float:
        return float(widget.data.loc[widget.data["slot"] == slot, "delta"].sum())

    wait_for(lambda: recorded() >= 700, "the workload's calls in the history's deltas")
    history = widget.source.recorder
    assert history.running
    widget.stop()
    assert not history.running  # the recorder made for the plot stops with it


def test_line_of_a_map_draws_each_key_over_time(prog):
    widget = _live.live(prog["counts"], kind="line", value="value", interval=0.2, top=1000)
    pid = workload(300)

    def latest() -> float:
        column = widget.data.get(str(pid))
        return float(column.iloc[-1]) if column is not None else 0.0

    wait_for(lambda: latest() == 300, "the workload's key reaching 300 in the plot")
    assert widget.data.index.is_monotonic_increasing  # one point per snapshot time
    widget.stop()


def test_flame_names_the_kernel_stacks_the_counts_are_keyed_by(prog):
    widget = _live.live(prog["stack_counts"], kind="flame", stacks=prog["stack_traces"], interval=0.2)
    pid = workload(250)

    def mine():
        return widget.data[widget.data["pid"] == pid] if "pid" in widget.data else widget.data.iloc[:0]

    wait_for(lambda: mine()["value"].sum() == 250, "the workload's 250 stacks")
    # The syscall's kernel path, outermost first, as the stack map symbolized it.
    assert mine()["folded"].str.contains("do_syscall_64;").all()
    widget.stop()


def test_live_widget_stops_when_its_program_detaches(no_leaks):
    program = bpfnb.Program(PROGRAM, name="live_detach")
    widget = _live.live(program["counts"], kind="table", interval=0.2)
    assert widget in program.resources
    program.detach()
    assert not widget.running and not live_threads()
    assert "stopped" in repr(widget)


def test_stream_line_shows_event_rates_and_stops_with_the_stream(prog):
    stream = prog.stream("events", time_field="ts")
    widget = _live.live(stream, kind="line", by="pid", every=0.5, interval=0.2)
    pid = workload(400)

    def plotted_events() -> float:
        column = widget.data.get(str(pid))
        return float(column.sum() * 0.5) if column is not None else 0.0

    # Rates times the bin width give back the events, once their bins are complete.
    wait_for(lambda: plotted_events() == 400, "400 events in the rate plot")
    status = widget.children[2].value
    assert "rows" in status and "lost 0" in status
    stream.stop()
    wait_for(lambda: not widget.running, "the widget to stop with its stream")
    assert "its source stopped" in widget.children[2].value


def test_status_shows_the_probe_cost_while_stats_are_on(prog):
    bpfnb.enable_stats()
    try:
        widget = _live.live(prog["counts"], kind="bar", interval=0.2)
        workload(2000)
        time.sleep(0.3)
        workload(2000)
        wait_for(lambda: "ns/run" in widget.children[2].value, "the probe's cost in the status line")
        widget.stop()
    finally:
        bpfnb.disable_stats()


def test_many_live_widgets_at_once(prog):
    # top=1000: other processes on this machine may call getppid() too.
    widgets = [_live.live(prog["counts"], kind=kind, interval=0.2, top=1000) for kind in ("bar", "table") * 2]
    widgets += [_live.live(prog["dist"], kind="hist", interval=0.2) for _ in range(3)]
    assert len(live_threads()) == 7
    pid = workload(100)
    wait_for(lambda: all(bar_value(w, pid) == 100 for w in widgets[:3:2]), "both bar plots")
    wait_for(lambda: all((w.data.get("key") == pid).any() for w in widgets[1:4:2]), "both tables")
    wait_for(lambda: all(w.data["count"].sum() >= 100 for w in widgets[4:]), "the histograms")
    for widget in widgets:
        widget.stop()
    assert not live_threads()


NOTEBOOK_CELLS = [
    "import hashlib, subprocess, sys, time\nfrom bpfnb import live as _live",
    "%%bpf headless\n" + PROGRAM,
    "w = _live.live(headless['counts'], kind='bar', interval=0.2, top=100)\nfirst = hashlib.sha1(w.png).hexdigest()\nw",
    f"pid = subprocess.run([sys.executable, '-c', {WORKLOAD!r}, '500'], capture_output=True).stdout.strip()\n"
    "while pid.decode() not in set(w.data['label']): time.sleep(0.05)",
    "w.stop()\nprint(first, hashlib.sha1(w.png).hexdigest())",
]


def test_headless_notebook_keeps_the_last_frame_as_png(kernel_name):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    NotebookClient(nb, kernel_name=kernel_name, timeout=120).execute()
    first, last = nb.cells[4].outputs[0].text.split()
    assert first != last
    (shown,) = [o for o in nb.cells[2].outputs if o.output_type == "display_data"]
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    # The saved PNG is the frame drawn last, not the one displayed first.
    assert hashlib.sha1(base64.b64decode(shown.data["image/png"])).hexdigest() == last
