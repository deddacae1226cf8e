"""Fixtures for tests that load real programs into the running kernel."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.privileged)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="needs root to load BPF programs"))


_FD_KINDS = {
    "anon_inode:bpf-prog": "prog",
    "anon_inode:bpf-map": "map",
    "anon_inode:bpf_link": "link",
    "anon_inode:btf": "btf",
    "anon_inode:[perf_event]": "perf_event",
}


def own_bpf_objects() -> dict[str, int]:
    """Count this process's open BPF programs, maps, links, BTF and perf events."""
    counts = dict.fromkeys(_FD_KINDS.values(), 0)
    for fd in os.listdir("/proc/self/fd"):
        try:
            kind = _FD_KINDS.get(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
        if kind:
            counts[kind] += 1
    return counts


def _held_prog_ids(pid: str) -> set[int]:
    """Ids of the programs process ``pid`` holds through a program or link fd."""
    held = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except OSError:
        return held
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as info:
                for line in info:
                    if line.startswith("prog_id:"):
                        held.add(int(line.split()[1]))
        except OSError:
            continue
    return held


def kernel_prog_ids() -> set[int]:
    """Ids of the kernel's BPF programs that this process holds or that no process holds.

    A program no process holds stays loaded only through a kernel attachment
    (XDP, tc, a socket): exactly the leak to catch. Programs of other processes
    are left out so that tests running beside other BPF users stay exact.
    (Debian's bpftool lists no holders, so /proc is read instead.)
    """
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    out = subprocess.run([bpftool, "-j", "prog", "show"], check=True, capture_output=True, text=True)
    loaded = {p["id"] for p in json.loads(out.stdout or "[]")}
    me = str(os.getpid())
    held_by_others = set().union(*(_held_prog_ids(pid) for pid in os.listdir("/proc") if pid.isdigit() and pid != me))
    return loaded - held_by_others


@pytest.fixture
def no_leaks():
    """Fail the test if it leaves a BPF program in the kernel or an fd in this process."""
    before_ids = kernel_prog_ids()
    before_fds = own_bpf_objects()
    yield
    # The kernel frees a closed program after an RCU grace period, not at close().
    deadline = time.monotonic() + 3
    while (leaked := kernel_prog_ids() - before_ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not leaked, f"programs left in the kernel: {sorted(leaked)}"
    assert own_bpf_objects() == before_fds


@pytest.fixture(scope="session")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small binary calling getppid() and bpfnb_target() N times (N = argv[1])."""
    binary = tmp_path_factory.mktemp("workload") / "workload"
    source = Path(__file__).parent / "data" / "workload.c"
    subprocess.run(["cc", "-O1", "-o", str(binary), str(source)], check=True)
    return binary


def run_workload(binary: Path, calls: int) -> int:
    """Run the workload to completion; return its pid."""
    process = subprocess.Popen([str(binary), str(calls)])
    assert process.wait() == 0
    return process.pid


@pytest.fixture(scope="module")
def kernel_name() -> str:
    """The installed "eBPF (bpfnb)" kernel spec's name; `make test` installs it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from bpfnb.tools.kernelspec import KERNEL_NAME

    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        pytest.fail(f"the {KERNEL_NAME!r} kernel spec is not installed in this venv: run `make test`")
    return KERNEL_NAME


@pytest.fixture
def checkout_reachable_by_others():
    """Let other users traverse to this checkout, as they could to a user's own clone.

    CI may clone under a private directory such as /root; the execute bit is
    added to such ancestors for the test and taken away again afterwards.
    """
    closed = [d for d in Path(sys.prefix).resolve().parents if not d.stat().st_mode & stat.S_IXOTH]
    for directory in closed:
        directory.chmod(directory.stat().st_mode | stat.S_IXOTH)
    try:
        yield
    finally:
        for directory in closed:
            directory.chmod(directory.stat().st_mode & ~stat.S_IXOTH)
