"""The "eBPF (bpfnb)" kernel spec, started through jupyter_client as root and as a user.

The user test makes a real user, installs the sudo launcher for it, and runs this
file as that user (see ``__main__`` below) so that jupyter_client starts the
kernel exactly as that user's Jupyter server would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bpfnb.tools.kernelspec import (
    KERNEL_NAME,
    engine_command,
    install_engine_launcher,
    install_kernelspec,
    launcher_path,
    sudoers_path,
    uninstall_engine_launcher,
    uninstall_kernelspec,
)

SYSCALL_CELL = """\
%%bpf syscalls
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""

# Runs inside the kernel: 1000 getppid() calls must all land in the kernel's own
# entry of the map; the ids of the programs it holds come from its fds' fdinfo
# (bpftool cannot name the processes holding a program on this kernel).
REPORT_CELL = """\
import json, os
for _ in range(1000):
    os.getppid()
_counts = {k.value: v.value for k, v in syscalls.bpf["counts"].items()}
_prog_ids = []
for _fd in os.listdir("/proc/self/fd"):
    try:
        if os.readlink(f"/proc/self/fd/{_fd}") == "anon_inode:bpf-prog":
            with open(f"/proc/self/fdinfo/{_fd}") as _f:
                _prog_ids += [int(l.split()[1]) for l in _f if l.startswith("prog_id:")]
    except OSError:
        pass
print(json.dumps({
    "pid": os.getpid(),
    "euid": os.geteuid(),
    "own_syscalls": _counts.get(os.getpid(), 0),
    "prog_ids": _prog_ids,
}))
"""


def drive_kernel() -> dict:
    """Start the bpfnb kernel from its spec, run the syscall counter, interrupt, shut down."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, startup_timeout=60)
    try:
        _execute(kc, SYSCALL_CELL)
        report = json.loads(_execute(kc, REPORT_CELL))
        report["interrupt_mode"] = km.kernel_spec.interrupt_mode
        report["argv"] = km.kernel_spec.argv
        report["interrupted"] = _interrupt_sleep(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    report["alive_after_shutdown"] = km.is_alive()
    return report


def _execute(kc, code: str) -> str:
    out: list[str] = []

    def hook(msg: dict) -> None:
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])

    reply = kc.execute_interactive(code, timeout=60, output_hook=hook)
    content = reply["content"]
    assert content["status"] == "ok", "\n".join(content.get("traceback", [])) or content
    return "".join(out)


def _interrupt_sleep(km, kc) -> str:
    """Interrupt a cell once its code runs; return the error it ended with."""
    # An interrupt that lands in the kernel's own code around a cell (sending
    # messages, flushing output) can break its sockets: wait until the cell has
    # printed, then a little more, so that it lands in time.sleep.
    msg_id = kc.execute("import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    while True:
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
            break
    time.sleep(0.5)
    km.interrupt_kernel()
    while True:
        reply = kc.get_shell_msg(timeout=30)
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply["content"].get("ename", reply["content"]["status"])


def _wait_gone(prog_ids: list[int]) -> list[int]:
    """Ids among ``prog_ids`` still loaded after a few seconds (freeing is deferred)."""
    deadline = time.monotonic() + 10
    while True:
        alive = [i for i in prog_ids if _prog_exists(i)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def _prog_exists(prog_id: int) -> bool:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    return subprocess.run([bpftool, "prog", "show", "id", str(prog_id)], capture_output=True).returncode == 0


def _check_ran(report: dict) -> None:
    assert report["euid"] == 0
    assert report["own_syscalls"] >= 1000
    assert report["prog_ids"], "the kernel holds no BPF program after the %%bpf cell"
    assert report["interrupted"] == "KeyboardInterrupt"
    assert not report["alive_after_shutdown"]
    assert not Path(f"/proc/{report['pid']}").exists()
    assert _wait_gone(report["prog_ids"]) == []


def test_root_kernel_runs_bpf_cell(no_leaks, tmp_path, monkeypatch):
    spec = install_kernelspec(tmp_path, python=sys.executable)
    assert spec.argv[0] == sys.executable and spec.launcher is None
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "share" / "jupyter"))

    report = drive_kernel()

    _check_ran(report)
    assert report["interrupt_mode"] == "signal"
    assert report["argv"][:5] == [sys.executable, "-m", "ipykernel_launcher", "--ext", "bpfnb"]


@pytest.fixture
def unprivileged_user(checkout_reachable_by_others):
    if not shutil.which("sudo"):
        pytest.fail("sudo is not installed: `make test` installs it")
    name = f"bpfnbt{os.getpid()}"
    subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name], check=True)
    prefix = Path(tempfile.mkdtemp(prefix="bpfnb-kernelspec-"))
    prefix.chmod(0o755)
    try:
        yield name, prefix
    finally:
        uninstall_kernelspec(prefix, user=name)
        shutil.rmtree(prefix, ignore_errors=True)
        subprocess.run(["userdel", "--remove", name], check=True, capture_output=True)


def _as_user(name: str, command: str) -> subprocess.CompletedProcess:
    # A login shell: the user's own HOME, PATH and runtime directory, nothing of ours.
    return subprocess.run(
        ["runuser", "-l", name, "-c", command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240,
    )


def test_user_kernel_runs_bpf_cell_through_sudo_launcher(no_leaks, unprivileged_user):
    name, prefix = unprivileged_user
    spec = install_kernelspec(prefix, user=name, python=sys.executable)
    launcher = launcher_path(name)
    assert spec.argv == ("sudo", "-n", str(launcher), "{connection_file}")
    st = launcher.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o755)
    assert stat.S_IMODE(launcher.parent.stat().st_mode) == 0o755 and launcher.parent.stat().st_uid == 0
    assert stat.S_IMODE(sudoers_path(name).stat().st_mode) == 0o440
    assert subprocess.run(["visudo", "-c"], capture_output=True).returncode == 0
    # The spec in the user's prefix belongs to whoever owns the prefix.
    assert (spec.spec_dir / "kernel.json").stat().st_uid == prefix.stat().st_uid

    jupyter_path = prefix / "share" / "jupyter"
    run = _as_user(name, f"JUPYTER_PATH={jupyter_path} {sys.executable} {Path(__file__).resolve()}")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.splitlines()[-1])

    _check_ran(report)
    assert report["interrupt_mode"] == "message"


def test_sudo_rule_allows_only_the_launcher_on_own_files(unprivileged_user):
    name, prefix = unprivileged_user
    install_kernelspec(prefix, user=name, python=sys.executable)
    launcher = launcher_path(name)
    assert _as_user(name, "sudo -n /bin/true").returncode != 0
    assert _as_user(name, f"sudo -n {launcher} relative.json").returncode == 64
    assert _as_user(name, f"sudo -n {launcher} /a.json /b.json").returncode == 64
    # A root-owned file is not the user's connection file.
    root_file = prefix / "root.json"
    root_file.write_text("{}")
    assert _as_user(name, f"sudo -n {launcher} {root_file}").returncode == 77


def test_install_is_idempotent_and_uninstall_removes_everything(unprivileged_user):
    name, prefix = unprivileged_user
    first = install_kernelspec(prefix, user=name, python=sys.executable)
    mtimes = [p.stat().st_mtime_ns for p in (first.spec_dir / "kernel.json", first.launcher, first.sudoers)]
    again = install_kernelspec(prefix, user=name, python=sys.executable)
    assert again == first
    assert [p.stat().st_mtime_ns for p in (again.spec_dir / "kernel.json", again.launcher, again.sudoers)] == mtimes

    uninstall_kernelspec(prefix, user=name)
    assert not first.spec_dir.exists()
    assert not first.launcher.exists() and not first.sudoers.exists()


def test_a_user_starts_root_cluster_engines_only_through_the_engine_launcher(unprivileged_user):
    import ipyparallel as ipp

    name, _prefix = unprivileged_user
    launcher, rule = install_engine_launcher(name, python=sys.executable)
    assert launcher == launcher_path(name, "engine") and rule == sudoers_path(name, "engine")
    assert (launcher.stat().st_uid, stat.S_IMODE(launcher.stat().st_mode)) == (0, 0o755)
    assert subprocess.run(["visudo", "-c"], capture_output=True).returncode == 0
    assert engine_command(name) == ["sudo", "-n", str(launcher)] and engine_command("root") == []
    assert _as_user(name, "sudo -n /bin/true").returncode != 0
    assert _as_user(name, f"sudo -n {launcher} --anything").returncode == 64
    assert _as_user(name, f"IPP_PROFILE_DIR=/root sudo -n {launcher}").returncode == 77

    # A controller of the user's own, and an engine the user starts through the launcher.
    home = Path(f"~{name}").expanduser()
    profile = home / "profile_cluster"
    controller = subprocess.Popen(
        ["runuser", "-u", name, "--", sys.executable, "-m", "ipyparallel.controller",
         f"--profile-dir={profile}", "--ip=127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    engine = None
    engine_pid = 0
    try:
        url_file = profile / "security" / "ipcontroller-client.json"
        deadline = time.monotonic() + 60
        while not (profile / "security" / "ipcontroller-engine.json").exists():
            assert time.monotonic() < deadline and controller.poll() is None, "the user's controller did not start"
            time.sleep(0.1)
        engine = subprocess.Popen(
            ["runuser", "-l", name, "-c", f"IPP_PROFILE_DIR={profile} exec sudo -n {launcher}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = ipp.Client(str(url_file))
        try:
            client.wait_for_engines(1, timeout=60)
            engine_pid = client[0].apply_sync(os.getpid)
            assert client[0].apply_sync(os.geteuid) == 0
        finally:
            client.close()
    finally:
        if engine_pid:
            os.kill(engine_pid, signal.SIGTERM)
        for process in (engine, controller):
            if process is not None:
                process.terminate()
                process.wait(30)
        uninstall_engine_launcher(name)
    assert not launcher.exists() and not rule.exists()


if __name__ == "__main__":
    # Run as the test user by test_user_kernel_runs_bpf_cell_through_sudo_launcher.
    assert os.getuid() != 0
    print(json.dumps(drive_kernel()))
