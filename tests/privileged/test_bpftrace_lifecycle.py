"""No bpftrace process and no BPF program outlive what started them: detach, a failed start, Ctrl-C, a killed kernel.

bpftrace holds its programs in its own process, so a leak is a bpftrace that
still runs: every test checks that the process is gone and that the kernel
freed the programs it held (``bpftool prog show``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

import bpfnb

pytestmark = pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make test installs it)")

SCRIPT = "tracepoint:sched:sched_process_exec { @[comm] = count(); }"
# Hundreds of tracepoints: attaching them takes long enough to interrupt.
SLOW_SCRIPT = "tracepoint:syscalls:sys_enter_* { @[probe] = count(); }"


def bpftraces(parent: int) -> list[int]:
    """The bpftrace processes ``parent`` started (bpftrace, or the lifeline about to become it) and that still run.

    Other children of a test process (a notebook kernel an earlier test left to its end) are not bpftrace's.
    """
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except (OSError, IndexError):
            continue
        if fields[1] == str(parent) and fields[0] not in "ZX" and b"bpftrace" in command:
            found.append(int(entry))
    return found


def held_prog_ids(pid: int) -> set[int]:
    """Ids of the BPF programs process ``pid`` holds."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids.update(int(line.split()[1]) for line in f if line.startswith("prog_id:"))
        except OSError:
            pass
    return ids


def loaded_prog_ids() -> set[int]:
    """Ids of every BPF program in the kernel, whoever holds it."""
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out = subprocess.run([bpftool, "-j", "prog", "show"], capture_output=True, check=True)
    return {p["id"] for p in json.loads(out.stdout or b"[]")}


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True


def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


def freed(ids: set[int]) -> None:
    """Wait until the kernel freed the programs ``ids`` (after an RCU grace period)."""
    eventually(lambda: not ids & loaded_prog_ids(), f"programs {sorted(ids)} to be freed")


def test_detach_stops_bpftrace_and_frees_its_programs(no_leaks: None) -> None:
    program = bpfnb.Program(SCRIPT, engine="bpftrace")
    (pid,) = bpftraces(os.getpid())
    ids = held_prog_ids(pid)
    assert len(ids) == 2 and ids <= loaded_prog_ids()  # the probe and bpfnb's printing interval
    program.detach()
    program.detach()
    assert gone(pid) and not bpftraces(os.getpid()) and program.state == "detached"
    freed(ids)


@pytest.mark.parametrize(
    "script, error",
    [
        ("BEGIN { }\ntracepoint:syscalls:sys_enter_getppid { @x = count( }", bpfnb.CompileError),
        ("BEGIN { }\ntracepoint:syscalls:sys_enter_getppid { @x = nope(1); }", bpfnb.CompileError),
        ("BEGIN { }\ntracepoint:nope:nope { @x = count(); }", bpfnb.AttachError),
        ("uprobe:/bin/sh:no_such_function_here { @x = count(); }", bpfnb.AttachError),
        ("nope:x { @x = count(); }", bpfnb.AttachError),
    ],
    ids=["syntax", "unknown-function", "unknown-tracepoint", "missing-uprobe-function", "unknown-probe-type"],
)
def test_a_failed_start_leaves_nothing(script: str, error: type, no_leaks: None) -> None:
    with pytest.raises(error):
        bpfnb.Program(script, engine="bpftrace", first_line=2)
    assert not bpftraces(os.getpid())


def test_errors_are_placed_at_the_cells_line_and_column() -> None:
    with pytest.raises(bpfnb.CompileError) as syntax:
        bpfnb.Program("BEGIN { }\ntracepoint:syscalls:sys_enter_getppid { @x = count( }", engine="bpftrace", first_line=2)
    assert syntax.value.message.endswith("syntax error, unexpected } (line 3, column 53)") and syntax.value.line == 3
    with pytest.raises(bpfnb.AttachError) as unknown:
        bpfnb.Program("BEGIN { }\ntracepoint:nope:nope { @x = count(); }", engine="bpftrace", first_line=2)
    assert unknown.value.message == "bpftrace cannot attach: tracepoint not found: nope:nope (line 3, columns 1-20)"
    assert "tracepoint:nope:nope" in unknown.value.details


@pytest.mark.skipif(os.path.exists("/sys/kernel/tracing/kprobe_events"), reason="this kernel has kprobes")
def test_a_kprobe_without_kprobes_is_bpftraces_attach_error() -> None:
    # bpftrace writes attached_probes *before* this attach fails: the start must not take that for success.
    with pytest.raises(bpfnb.AttachError) as caught:
        bpfnb.Program("BEGIN { }\nkprobe:do_nanosleep { @x = count(); }", engine="bpftrace", first_line=2)
    assert caught.value.message == "bpftrace cannot attach: Error attaching probe: 'kprobe:do_nanosleep' (line 3, columns 1-19)"
    assert "kprobe_events" in caught.value.details and not bpftraces(os.getpid())


# A Python process that starts a bpftrace script, reporting the bpftrace it forked.
# With `interrupt`, it presses Ctrl-C on itself the moment bpftrace exists: a
# delay chosen by the parent could outlast the attach on a fast machine.
CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    sys.path.insert(0, {root!r})
    import bpfnb
    from tests.privileged.test_bpftrace_lifecycle import bpftraces, held_prog_ids

    def report():
        while not bpftraces(os.getpid()):
            time.sleep(0.001)
        print("pid", *bpftraces(os.getpid()), flush=True)
        if {interrupt!r}:
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=report, daemon=True).start()
    try:
        program = bpfnb.Program({script!r}, engine="bpftrace")
    except KeyboardInterrupt as exc:
        print("interrupted", type(exc).__name__, len(bpftraces(os.getpid())), flush=True)
        sys.exit(0)
    (pid,) = bpftraces(os.getpid())
    time.sleep(0.1)
    print("started", *sorted(held_prog_ids(pid)), flush=True)
    time.sleep(600)
    """
)


def start_child(script: str, interrupt: bool = False) -> tuple[subprocess.Popen[str], int]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(root=root, script=script, interrupt=interrupt)], stdout=subprocess.PIPE, text=True, cwd=root
    )
    assert child.stdout is not None
    word, pid = child.stdout.readline().split()
    assert word == "pid"
    return child, int(pid)


def test_ctrl_c_while_bpftrace_attaches_leaves_nothing() -> None:
    child, pid = start_child(SLOW_SCRIPT, interrupt=True)
    out, _ = child.communicate(timeout=60)
    assert out.split() == ["interrupted", "Interrupted", "0"]
    eventually(lambda: gone(pid), "bpftrace to go")


def test_a_killed_kernel_takes_bpftrace_and_its_programs_along() -> None:
    child, pid = start_child(SCRIPT)
    assert child.stdout is not None
    word, *ids = child.stdout.readline().split()
    assert word == "started" and ids
    child.kill()
    child.wait()
    child.stdout.close()
    eventually(lambda: gone(pid), "bpftrace to die with its parent")
    freed({int(i) for i in ids})
