"""``make lab`` for a user who has neither root nor sudo: it says what it skips, and JupyterLab starts.

The user is made for the test, in no group that sudo trusts. Its virtualenv
is this one seen through a ``.pth`` file (with this checkout first), with the
install stamp already newer than pyproject.toml: make then has nothing to
download, and runs every step of ``lab`` that follows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {
    "jupyter": "jupyter_core.command",
    "jupyter-lab": "jupyterlab.labapp",
    "bpfnb": "bpfnb.tools.cli",
}


def make_venv(directory: Path) -> Path:
    """A venv of the user's that sees this one's packages (this checkout's bpfnb first) and has make's stamp."""
    venv = directory / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip())
    (purelib / "bpfnb-test.pth").write_text(f"{ROOT}\n{sysconfig.get_path('purelib')}\n")
    for name, module in SCRIPTS.items():
        script = venv / "bin" / name
        script.write_text(f"#!{venv}/bin/python\nimport sys\nfrom {module} import main\nsys.exit(main())\n")
        script.chmod(0o755)
    (venv / ".bpfnb-installed").touch()
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def user_without_sudo(checkout_reachable_by_others) -> Iterator[tuple[str, Path]]:
    name = f"bpfnbl{os.getpid()}"
    subprocess.run(["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", name], check=True)
    directory = Path(tempfile.mkdtemp(prefix="bpfnb-make-lab-"))
    try:
        make_venv(directory)
        subprocess.run(["chown", "-R", f"{name}:{name}", str(directory)], check=True)
        yield name, directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        subprocess.run(["userdel", "--remove", name], check=True, capture_output=True)


def kernel_specs(port: int, token: str) -> dict[str, Any]:
    """The server's kernel specs; it may print its address a moment before it answers."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=10) as reply:
                specs: dict[str, Any] = json.load(reply)
                return specs
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(lab: subprocess.Popen[str], user: str) -> None:
    os.killpg(lab.pid, signal.SIGTERM)
    try:
        lab.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(lab.pid, signal.SIGKILL)
        lab.wait()
    assert lab.stdout is not None
    lab.stdout.close()
    # Everything the user ran was in the session killed above; userdel refuses while any of it lives.
    deadline = time.monotonic() + 10
    while subprocess.run(["pgrep", "-u", user], capture_output=True).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.1)


def test_make_lab_without_sudo_starts_jupyterlab(user_without_sudo):
    name, directory = user_without_sudo
    groups = subprocess.run(["id", "-Gn", name], check=True, capture_output=True, text=True).stdout.split()
    assert not {"sudo", "wheel", "admin"} & set(groups)
    port, token = free_port(), "bpfnb-test-token"
    command = (
        f"make -C {ROOT} lab VENV={directory / 'venv'} LAB_PORT={port} "
        f"LAB_ARGS='--IdentityProvider.token={token} --ServerApp.open_browser=False'"
    )
    # setpriv rather than a login shell: the server stays in this new session, which stop() ends.
    env = {"HOME": f"/home/{name}", "USER": name, "LOGNAME": name, "PATH": "/usr/local/bin:/usr/bin:/bin", "SHELL": "/bin/sh"}
    lab = subprocess.Popen(
        ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "sh", "-c", command],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env, cwd="/tmp",
    )
    seen: list[str] = []
    try:
        assert lab.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line:
                break
            seen.append(line)
            if re.search(rf"http://127\.0\.0\.1:{port}/lab", line):
                break
        output = "".join(seen)
        assert re.search(rf"http://127\.0\.0\.1:{port}/lab", output), output
        assert "make: skipping 'bpfnb doctor --fix' (mounts and kernel headers need root" in output
        assert f"make: the notebook kernel runs as {name}, without the privileges BPF programs need" in output
        assert "sudo" not in re.sub(r"make: .*\n", "", output), output
        specs = kernel_specs(port, token)
        argv = specs["kernelspecs"]["bpfnb"]["spec"]["argv"]
        assert argv[0] == str(directory / "venv" / "bin" / "python") and "sudo" not in argv
    finally:
        stop(lab, name)
