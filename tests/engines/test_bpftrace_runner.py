"""Stopping bpftrace: it may take its time while it works (printing a big map), not while it hangs.

Python children stand in for bpftrace, so that no root is needed: both
ignore SIGINT; one computes for a while and exits, the other sleeps.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from bpfnb.engines.bpftrace.prepared import prepare
from bpfnb.engines.bpftrace.runner import Bpftrace

BUSY = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
start = time.process_time()
while time.process_time() - start < 1.5:
    pass
"""
HUNG = """
import signal, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Bpftrace]]:
    """Runs of bpftrace whose process is a Python child running the given code."""
    monkeypatch.setenv("BPFTRACE", "/bin/true")  # never run: the child takes its place
    children: list[subprocess.Popen[bytes]] = []

    def run(code: str) -> Bpftrace:
        bpftrace = Bpftrace(prepare("BEGIN { }"))
        # In a session of its own, as the runner starts bpftrace: killed, its process group goes.
        bpftrace.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
        children.append(bpftrace.process)
        assert bpftrace.process.stdout is not None and bpftrace.process.stdout.readline() == b"ready\n"
        return bpftrace

    yield run
    for child in children:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_a_busy_bpftrace_is_left_to_finish(stand_in: Callable[[str], Bpftrace]) -> None:
    run = stand_in(BUSY)
    run.stop(quiet=0.5)
    assert run.returncode == 0


def test_a_hung_bpftrace_is_killed_once_quiet(stand_in: Callable[[str], Bpftrace]) -> None:
    run = stand_in(HUNG)
    started = time.monotonic()
    run.stop(quiet=0.3)
    assert run.returncode == -signal.SIGKILL and time.monotonic() - started < 10
    run.stop()  # idempotent
