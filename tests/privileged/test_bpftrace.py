"""bpftrace scripts through bpfnb.Program against the real kernel: maps as frames while they run, printf as a stream.

One script, started once for the module, fills a map of each kind from one
run of a workload whose behaviour is known exactly: ``bpfnb_target(i)`` for
i = 0..99 and 100 getppid() calls, under a name of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import bpfnb
from bpfnb.maps.reported import ReportedMapView
from bpfnb.streams.text import TextStream

pytestmark = pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make test installs it)")

CALLS = 100
SCRIPT = """\
uprobe:{binary}:bpfnb_target {{
    @log = hist(arg0); @lin = lhist(arg0, 0, 100, 10); @st = stats(arg0); @av[comm] = avg(arg0);
    @mn = min(arg0); @mx = max(arg0); @sum = sum(arg0); @pc[pid, comm] = count(); @last = arg0;
}}
tracepoint:syscalls:sys_enter_getppid /comm == "bt-load"/ {{ @calls[comm] = count(); }}
tracepoint:sched:sched_process_exec /comm == "bt-load"/ {{ printf("exec pid=%d comm=%s n=%d\\n", pid, comm, 7); }}
"""


@pytest.fixture(scope="module")
def traced(workload: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[bpfnb.Program, int]]:
    """The script, running, after one run of the workload (named bt-load); and the workload's pid."""
    binary = tmp_path_factory.mktemp("bpftrace") / "bt-load"
    shutil.copy(workload, binary)
    program = bpfnb.Program(SCRIPT.format(binary=binary), engine="bpftrace", name="traced", interval_ms=100)
    process = subprocess.Popen([str(binary), str(CALLS)])
    assert process.wait() == 0
    reported(program, "@pc").wait()
    yield program, process.pid
    program.detach()


def reported(program: bpfnb.Program, name: str) -> ReportedMapView:
    view = program[name]
    assert isinstance(view, ReportedMapView)
    return view


def test_maps_are_current_while_the_script_runs(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    assert program.state == "attached" and program.engine == "bpftrace"
    calls = reported(program, "@calls").df()
    assert calls.to_dict("list") == {"comm": ["bt-load"], "count": [CALLS]}
    assert not calls.attrs["final"] and calls.attrs["time"] is not None


def test_a_key_of_several_parts_is_a_column_each(traced: tuple[bpfnb.Program, int]) -> None:
    program, pid = traced
    df = reported(program, "@pc").df()
    assert df.to_dict("list") == {"pid": [pid], "comm": ["bt-load"], "count": [CALLS]}
    assert df["pid"].dtype == np.int64


def test_hist_is_a_bucket_frame_with_percentiles(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    view = reported(program, "@log")
    df = view.df()
    assert list(df.columns) == ["slot", "lo", "hi", "count"] and view.histogram
    # 0 alone, 1 alone, then 2-3, 4-7, ... 64-127 (of which 64-99).
    assert df["count"].tolist() == [1, 1, 2, 4, 8, 16, 32, 36] and df["lo"].tolist()[-1] == 64
    p = bpfnb.percentiles(df)
    assert p["q"].tolist() == [50, 90, 99] and p["lo"].tolist() == [32, 64, 64] and (p["total"] == CALLS).all()
    assert bpfnb.plot.hist(df) is not None


def test_lhist_is_a_bucket_frame_of_its_steps(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    df = reported(program, "@lin").df()
    assert df["slot"].tolist() == list(range(10)) and df["lo"].tolist() == list(range(0, 100, 10))
    assert df["hi"].tolist() == list(range(9, 100, 10)) and (df["count"] == 10).all()
    assert bpfnb.percentiles(df, [50])["value"].iloc[0] == pytest.approx(49.5, abs=1)


def test_stats_avg_min_max_sum_and_plain_values_have_their_columns(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    frames = {name: reported(program, name).df().to_dict("list") for name in ("@st", "@av", "@mn", "@mx", "@sum", "@last")}
    assert frames == {
        "@st": {"count": [CALLS], "average": [49], "total": [4950]},
        "@av": {"comm": ["bt-load"], "avg": [49]},
        "@mn": {"min": [0]},
        "@mx": {"max": [99]},
        "@sum": {"sum": [4950]},
        "@last": {"value": [99]},
    }


def test_printf_is_a_stream_with_key_value_columns(traced: tuple[bpfnb.Program, int]) -> None:
    program, pid = traced
    stream = program.stream()
    assert isinstance(stream, TextStream)
    df = stream.wait(n=1, seconds=10).df()
    assert df[["text", "pid", "comm", "n"]].to_dict("list") == {
        "text": [f"exec pid={pid} comm=bt-load n=7"],
        "pid": [pid],
        "comm": ["bt-load"],
        "n": [7],
    }
    assert df["pid"].dtype == np.int64 and str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert (stream.received, stream.lost, stream.running) == (1, 0, True)
    assert "exec pid=" in stream._repr_html_()


def test_what_a_program_lists_and_refuses(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    assert [(p.kind, p.target) for p in program.attachments][1:] == [
        ("bpftrace", "tracepoint:syscalls:sys_enter_getppid"),
        ("bpftrace", "tracepoint:sched:sched_process_exec"),
    ]
    assert program.map_names() == ["@log", "@lin", "@st", "@av", "@mn", "@mx", "@sum", "@pc", "@last", "@calls"]
    assert "map @calls: count comm -> count" in repr(program) and "<table" in program._repr_html_()
    with pytest.raises(bpfnb.ArgumentError, match="held by bpftrace"):
        program.test_run("x", bytes(64))
    with pytest.raises(bpfnb.ArgumentError, match="no fds"):
        program.function_fd("x")
    with pytest.raises(bpfnb.ArgumentError, match="not a ring or perf buffer"):
        program.stream("@calls")
    with pytest.raises(bpfnb.NoSuchMapError):
        program["@nope"]


def test_history_and_live_histogram(traced: tuple[bpfnb.Program, int]) -> None:
    program, _ = traced
    history = reported(program, "@calls").history()
    assert history.interval == 0.1
    history.record()
    assert history.df()["count"].iloc[-1] == CALLS
    history.stop()
    widget = reported(program, "@log").live(interval=0.2)
    try:
        assert widget.kind == "hist"  # a histogram by default, with p50, p90 and p99 marked
        deadline = time.monotonic() + 20
        while widget.frames == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert widget.data["count"].sum() == CALLS
    finally:
        widget.stop()


def test_the_last_print_stays_readable_after_detach(workload: Path) -> None:
    program = bpfnb.Program('BEGIN { @x = 5; printf("hi n=1\\n"); exit(); }', engine="bpftrace")
    stream, x = program.stream(), reported(program, "@x")
    program.detach()
    assert x.df().to_dict("list") == {"value": [5]} and x.df().attrs["final"]
    assert stream.df()["n"].tolist() == [1] and not stream.running


FLOOD = """
import os, sys, time
with open("/proc/self/comm", "w") as f:
    f.write("bt-flood")
for _ in range(int(sys.argv[1])):
    os.getppid()
# The kernel writes a perf buffer's lost-record only when the next record
# fits: after a pause, one more event on every CPU flushes the last count.
time.sleep(0.5)
for cpu in sorted(os.sched_getaffinity(0)):
    os.sched_setaffinity(0, {cpu})
    os.getppid()
"""


def test_lost_events_are_counted_exactly() -> None:
    # One page of perf buffer per CPU: a burst overflows it; every event is delivered or counted lost.
    n = 200_000
    total = n + len(os.sched_getaffinity(0))
    source = 'tracepoint:syscalls:sys_enter_getppid /comm == "bt-flood"/ { printf("i=%d\\n", 1); }'
    with bpfnb.Program(source, engine="bpftrace", env={"BPFTRACE_PERF_RB_PAGES": "1"}) as program:
        stream = program.stream()
        subprocess.run([sys.executable, "-c", FLOOD, str(n)], check=True)
        deadline = 60
        while stream.received + stream.lost < total and deadline:
            stream.wait(n=total - stream.lost, seconds=0.5)
            deadline -= 1
        assert stream.lost > 0 and stream.received + stream.lost == total
        assert len(stream.df()) == stream.received


def test_without_an_interval_maps_come_at_exit_all_of_them(workload: Path, tmp_path: Path) -> None:
    # More keys than bpftrace keeps by default (4096): env= raises its limit.
    binary = tmp_path / "bt-keys"
    shutil.copy(workload, binary)
    calls = 20_000
    source = f"uprobe:{binary}:bpfnb_target {{ @m[arg0] = count(); }}"
    program = bpfnb.Program(source, engine="bpftrace", interval_ms=0, env={"BPFTRACE_MAP_KEYS_MAX": str(2 * calls)})
    view = reported(program, "@m")
    with pytest.raises(bpfnb.ArgumentError, match="only when its program ends"):
        view.wait()
    subprocess.run([str(binary), str(calls)], check=True)
    assert view.df().empty
    program.detach()
    df = view.df()
    assert df.attrs["final"] and len(df) == calls and (df["count"] == 1).all()
    assert sorted(df["arg0"]) == list(range(calls))
