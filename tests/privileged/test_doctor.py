"""The doctor against the real kernel: real probes, real verdicts, nothing left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfnb import PrivilegeError, SetupError
from bpfnb.kernel import environment as env
from bpfnb.kernel.features import try_attach_types
from bpfnb.tools.doctor import fix, report

from ..kernel.test_environment import make_debian_headers
from .conftest import kernel_prog_ids

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (env.kernel_config() or ("", {}))[1]
KPROBES_OFF = CONFIG.get("CONFIG_KPROBES", "n") == "n"


def run_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python args...`` in this checkout as user nobody, without any capability."""
    command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, *args]
    env_vars = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, cwd="/tmp", env=env_vars, timeout=120)


@pytest.fixture
def fresh_probes(no_leaks):
    """Probe anew, then let the kernel finish freeing what the probes closed.

    Programs released through a link (raw tracepoint, tp_btf) or a socket
    are freed after an RCU grace period: for a few milliseconds after their
    last fd is closed, ``bpftool`` still lists them, held by nobody. A real
    leak stays; the ``no_leaks`` check runs after this wait.
    """
    try_attach_types.cache_clear()
    before = kernel_prog_ids()
    yield
    deadline = time.monotonic() + 2
    while kernel_prog_ids() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    try_attach_types.cache_clear()


def verdicts() -> dict[str, tuple[str, str]]:
    return {r.attach: (r.verdict, r.reason) for r in try_attach_types()}


def test_probes_give_this_kernels_verdicts(fresh_probes):
    found = verdicts()
    for attach in ("tracepoint", "raw_tracepoint", "tp_btf", "uprobe", "perf_event", "xdp", "socket_filter"):
        assert found[attach][0] == "ok", (attach, found[attach])
    if KPROBES_OFF:
        # This VM kind: no kprobes, and fentry programs are refused even as root.
        assert found["kprobe"] == ("unavailable", "CONFIG_KPROBES is off")
        assert found["fentry"][0] == "refused"
        assert "EPERM" in found["fentry"][1]
    else:
        assert found["kprobe"][0] == "ok"


def test_probing_twice_leaves_nothing_behind(fresh_probes):
    first = try_attach_types()
    try_attach_types.cache_clear()
    assert try_attach_types() == first


def test_probes_are_cached_per_process(fresh_probes):
    assert try_attach_types() is try_attach_types()


def test_report_has_every_precondition_and_passes_here(fresh_probes):
    result = report()
    assert result.ok, result.failures
    checks = [row.check for row in result.rows]
    for name in (
        "privileges",
        "bpf() syscall",
        "BCC",
        "kernel headers",
        "tracefs",
        "debugfs",
        "bpffs",
        "lockdown",
        "memlock limit",
        "bpf_stats_enabled",
        "CONFIG_BPF_SYSCALL",
        "CONFIG_DEBUG_INFO_BTF",
        "BTF",
        "attach: tracepoint",
        "attach: xdp",
    ):
        assert name in checks
    assert result["privileges"].state == "ok"
    assert result["attach: tracepoint"].state == "ok"
    assert result["BCC"].detail.startswith(env.bcc_version())
    headers = env.find_kernel_headers()
    assert result["kernel headers"].state == ("ok" if headers.matches else "warn")
    if KPROBES_OFF:
        assert result["attach: kprobe"].state == "warn"
        assert result["CONFIG_KPROBES"].state == "warn"
    if CONFIG.get("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY") == "y":
        assert result["lockdown"].detail.startswith("integrity")


def test_shell_doctor_prints_the_table_and_exits_0_here():
    done = subprocess.run(
        [sys.executable, "-m", "bpfnb.tools.cli", "doctor"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("bpfnb doctor: ") and lines[1] == ""
    # Warnings, where there are some, come first; then each group of checks with its own table.
    titles = [lines[i - 1].rsplit(":", 1)[0] for i, line in enumerate(lines) if line.split() == ["check", "state", "detail"]]
    assert titles[-3:] == ["Set-up", "Kernel config", "Attach types (tried for real)"]
    problems = re.search(r"(\d+) warn", lines[0])
    assert titles[:-3] == ([f"Needs attention ({problems[1]})"] if problems else [])
    assert any(line.split()[:3] == ["attach:", "tracepoint", "ok"] for line in lines)


@pytest.mark.usefixtures("checkout_reachable_by_others")
def test_shell_doctor_as_nobody_fails_on_privileges():
    done = run_as_nobody("-m", "bpfnb.tools.cli", "doctor")
    assert done.returncode == 1, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if line.startswith("privileges"))
    assert row.split()[:4] == ["privileges", "fail", "uid", "65534:"]


@pytest.mark.usefixtures("checkout_reachable_by_others")
def test_fix_as_nobody_says_it_needs_root():
    done = run_as_nobody("-m", "bpfnb.tools.cli", "doctor", "--fix")
    assert done.returncode == 1
    assert "needs root" in done.stderr
    assert "sudo bpfnb doctor --fix" in done.stderr


def test_fix_is_idempotent_here(tmp_path, fresh_probes):
    # Mounts are really checked (all are mounted on these machines, so nothing
    # is mounted again); header linking goes to a temporary tree.
    src = tmp_path / "src"
    arch = make_debian_headers(src, "6.1.0-56")
    paths = {"release": "9.9.9-test", "modules_root": str(tmp_path / "modules"), "src_root": str(src)}

    first = fix(**paths)
    assert first["link headers"].state == "done"
    assert os.readlink(tmp_path / "modules/9.9.9-test/build") == str(arch)
    for name in ("tracefs", "debugfs", "bpffs"):
        assert first[f"mount {name}"].state == "ok", first[f"mount {name}"]

    second = fix(**paths)
    assert {row.state for row in second.rows} == {"ok"}


def test_preflight_passes_here():
    assert env.preflight(needs_tracefs=True) is None


@pytest.mark.usefixtures("checkout_reachable_by_others")
def test_preflight_as_nobody_raises_privilege_error_with_the_fix():
    code = (
        "from bpfnb.kernel.environment import preflight\n"
        "try:\n"
        "    preflight(needs_tracefs=True)\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.message, sep='|')\n"
    )
    done = run_as_nobody("-c", code)
    kind, message = done.stdout.strip().split("|")
    assert kind == PrivilegeError.__name__
    assert "lacks CAP_BPF/CAP_PERFMON" in message
    assert "'eBPF (bpfnb)' kernel" in message


def test_preflight_without_headers_raises_setup_error(monkeypatch, tmp_path):
    monkeypatch.setattr(env, "_passed", {"privileges", "bcc"})
    monkeypatch.setenv("BCC_KERNEL_MODULES_SUFFIX", "no-such-build-dir")
    with pytest.raises(SetupError, match="kernel headers not found") as error:
        env.preflight(needs_tracefs=False)
    assert "bpfnb doctor --fix" in error.value.message
