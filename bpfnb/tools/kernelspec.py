"""Install the "eBPF (bpfnb)" Jupyter kernel spec, and its sudo launcher.

A kernel that loads BPF programs needs root. The Jupyter server must not run as
root unless its user already is, so only the kernel gets privileges:

* for root, the spec runs the venv's Python directly;
* for any other user, the spec runs ``sudo -n LAUNCHER {connection_file}``.
  ``LAUNCHER`` (``/usr/local/libexec/bpfnb/kernel-<user>``, root-owned) execs the
  venv's ``ipykernel_launcher`` on a connection file that user owns, and a
  sudoers drop-in (``/etc/sudoers.d/bpfnb-<user>``) lets exactly that user run
  exactly that launcher without a password. Signals from the unprivileged
  server cannot reach a root kernel, so that spec asks for
  ``interrupt_mode: "message"``.

Cluster engines (:mod:`bpfnb.remote`) get root the same narrow way:
:func:`install_engine_launcher` puts ``/usr/local/libexec/bpfnb/engine-<user>``
and its sudoers rule on a host (``bpfnb cluster setup --user USER``), and
``bpfnb cluster start --user USER`` starts engines through it. That launcher
takes no argument; the rule keeps only the environment variables with which
ipyparallel's launchers say where the connection files are.

The templates live in the repository's ``kernels/`` directory. The module is
also the command ``bpfnb kernelspec install|uninstall`` that
``make`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..display.html import card, facts
from ..errors import PrivilegeError, SetupError

__all__ = [
    "CLI_ARGUMENTS",
    "KERNEL_NAME",
    "InstalledKernelSpec",
    "engine_command",
    "install_engine_launcher",
    "install_kernelspec",
    "launcher_path",
    "run",
    "sudoers_path",
    "uninstall_engine_launcher",
    "uninstall_kernelspec",
]

KERNEL_NAME = "bpfnb"
LIBEXEC_DIR = Path("/usr/local/libexec/bpfnb")
SUDOERS_DIR = Path("/etc/sudoers.d")
TEMPLATES = Path(__file__).resolve().parents[2] / "kernels"

# Both names end up in file names and in a sudoers rule: keep them to
# characters that mean nothing to sh or sudoers.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")


@dataclass(frozen=True)
class InstalledKernelSpec:
    """Where a kernel spec was installed and how it starts its kernel.

    Attributes
    ----------
    spec_dir : Path
        The kernel spec directory (``<prefix>/share/jupyter/kernels/bpfnb``).
    argv : tuple of str
        The command Jupyter runs, ``{connection_file}`` still unexpanded.
    launcher : Path or None
        The root-owned launcher run through sudo, for a non-root user.
    sudoers : Path or None
        The sudoers drop-in that allows ``launcher``, for a non-root user.
    """

    spec_dir: Path
    argv: tuple[str, ...]
    launcher: Path | None = None
    sudoers: Path | None = None

    def __repr__(self) -> str:
        lines = [f"<InstalledKernelSpec {KERNEL_NAME!r} in {self.spec_dir}>", f"  argv: {shlex.join(self.argv)}"]
        if self.launcher is not None:
            lines += [f"  launcher: {self.launcher}", f"  sudoers: {self.sudoers}"]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [("kernel spec", self.spec_dir), ("argv", shlex.join(self.argv))]
        if self.launcher is not None:
            rows += [("launcher", self.launcher), ("sudoers", self.sudoers)]
        return card(f"Jupyter kernel spec {KERNEL_NAME!r}", facts(rows))


#: What each kind of launcher starts: its template, and what its sudoers rule says and keeps.
_LAUNCHERS = {
    "kernel": ("launcher.sh", "their eBPF notebook kernel", "How the kernel gets its privileges", ""),
    "engine": (
        "engine-launcher.sh",
        "bpfnb cluster engines",
        "Clusters",
        'Defaults!{launcher} env_keep += "IPP_PROFILE_DIR IPP_CLUSTER_ID IPP_CONNECTION_INFO"\n',
    ),
}


def launcher_path(user: str, kind: str = "kernel") -> Path:
    """Return the path of ``user``'s root-owned launcher of a ``kind`` (kernel or engine)."""
    return LIBEXEC_DIR / f"{kind}-{_check_user(user)}"


def sudoers_path(user: str, kind: str = "kernel") -> Path:
    """Return the path of the sudoers drop-in for ``user``'s launcher of a ``kind``."""
    # sudo skips files in sudoers.d whose names contain a dot.
    prefix = "bpfnb-" if kind == "kernel" else f"bpfnb-{kind}-"
    return SUDOERS_DIR / f"{prefix}{_check_user(user).replace('.', '_')}"


def engine_command(user: str | None) -> list[str]:
    """The command that starts a root cluster engine for ``user`` on a host set up by :func:`install_engine_launcher`.

    Empty for root (or no user): ipyparallel's own engine command is right then.
    """
    return [] if user in (None, "root") else ["sudo", "-n", str(launcher_path(str(user), "engine"))]


def install_engine_launcher(user: str, *, python: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Let ``user`` start root cluster engines on this host: a launcher and its sudoers rule (needs root).

    Returns the launcher's and the rule's paths. ``python`` is the venv's
    interpreter the engines run (default: this one).
    """
    return _install_launcher(user, python=os.path.abspath(python or sys.executable), kind="engine")


def uninstall_engine_launcher(user: str) -> None:
    """Remove ``user``'s engine launcher and its sudoers rule (needs root)."""
    _require_root("removing an engine launcher")
    _remove_launcher(user, "engine")


def install_kernelspec(
    prefix: str | os.PathLike[str],
    *,
    user: str | None = None,
    python: str | os.PathLike[str] | None = None,
) -> InstalledKernelSpec:
    """Install the "eBPF (bpfnb)" kernel spec under ``prefix``.

    Idempotent: files whose content is already right are left alone.

    Parameters
    ----------
    prefix : path
        The sys-prefix to install into, usually the venv; the spec goes to
        ``<prefix>/share/jupyter/kernels/bpfnb``, where that venv's Jupyter
        finds it.
    user : str, optional
        Install the sudo launcher and sudoers rule so that this (non-root) user
        can start a root kernel. Needs root. Without it the spec runs
        ``python`` directly, which only works for root.
    python : path, optional
        The venv's Python interpreter the kernel runs; defaults to the running
        one. Its path is kept as given (a venv's ``python`` is a symlink that
        must not be resolved).

    Returns
    -------
    InstalledKernelSpec

    Raises
    ------
    PrivilegeError
        ``user`` was given but this process is not root.
    SetupError
        The templates, the interpreter or sudo's ``visudo`` are missing, or the
        sudoers rule does not validate.
    """
    python = os.path.abspath(python if python is not None else sys.executable)
    if not os.access(python, os.X_OK):
        raise SetupError(f"{python} is not an executable Python interpreter", hint="Pass the venv's bin/python.")
    prefix = Path(prefix).absolute()
    spec_dir = prefix / "share" / "jupyter" / "kernels" / KERNEL_NAME
    if user is None:
        spec = _template_json("bpfnb", PYTHON=python)
        launcher = sudoers = None
    else:
        launcher, sudoers = _install_launcher(user, python=python)
        spec = _template_json("bpfnb-sudo", LAUNCHER=str(launcher))
    owner = _owner(prefix)
    _make_dirs(spec_dir, owner)
    path = spec_dir / "kernel.json"
    _write_if_changed(path, json.dumps(spec, indent=2) + "\n", mode=0o644)
    if os.geteuid() == 0:
        os.chown(path, *owner)
    return InstalledKernelSpec(spec_dir=spec_dir, argv=tuple(spec["argv"]), launcher=launcher, sudoers=sudoers)


def uninstall_kernelspec(prefix: str | os.PathLike[str], *, user: str | None = None) -> None:
    """Remove what :func:`install_kernelspec` installed; missing parts are fine.

    Parameters
    ----------
    prefix : path
        The sys-prefix the spec was installed under.
    user : str, optional
        Also remove this user's launcher and sudoers rule (needs root).
    """
    if user is not None:
        _require_root("removing a kernel launcher")
    shutil.rmtree(Path(prefix) / "share" / "jupyter" / "kernels" / KERNEL_NAME, ignore_errors=True)
    if user is None:
        return
    _remove_launcher(user, "kernel")


def _remove_launcher(user: str, kind: str) -> None:
    # The sudoers rule goes first: a rule naming a missing launcher is harmless,
    # the reverse order would briefly allow a path someone else could create.
    sudoers_path(user, kind).unlink(missing_ok=True)
    launcher_path(user, kind).unlink(missing_ok=True)
    if LIBEXEC_DIR.is_dir() and not any(LIBEXEC_DIR.iterdir()):
        LIBEXEC_DIR.rmdir()


def _install_launcher(user: str, *, python: str, kind: str = "kernel") -> tuple[Path, Path]:
    template, what, section, defaults = _LAUNCHERS[kind]
    _require_root(f"installing the sudo {kind} launcher")
    try:
        entry = pwd.getpwnam(_check_user(user))
    except KeyError:
        raise SetupError(f"there is no user {user!r}", hint="Pass an existing user name.") from None
    if entry.pw_uid == 0:
        raise SetupError("root needs no launcher", hint="Install the kernel spec without a user.")
    visudo = shutil.which("visudo") or "/usr/sbin/visudo"
    if not os.access(visudo, os.X_OK):
        raise SetupError(
            "sudo is not installed, so a non-root user cannot start the privileged kernel",
            hint="Install sudo (`apt-get install sudo`), or run `make lab` again.",
        )
    # root-owned all the way down: whoever can write this directory could
    # replace the launcher that sudo runs as root.
    LIBEXEC_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(LIBEXEC_DIR, 0, 0)
    LIBEXEC_DIR.chmod(0o755)
    launcher = launcher_path(user, kind)
    script = _template(template, USER=user, UID=str(entry.pw_uid), PYTHON=shlex.quote(python))
    _write_if_changed(launcher, script, mode=0o755)
    os.chown(launcher, 0, 0)
    remove = f"bpfnb kernelspec uninstall --user {user}" if kind == "kernel" else f"bpfnb cluster setup --remove --user {user}"
    rule = (
        f"# bpfnb: lets {user} start {what} (the launcher runs it) as root.\n"
        f"# See README.md, \"{section}\". Remove with\n"
        f"# `{remove}`.\n"
        f"{defaults.format(launcher=launcher)}"
        f"{user} ALL=(root) NOPASSWD: {launcher}\n"
    )
    sudoers = sudoers_path(user, kind)
    if not sudoers.is_file() or sudoers.read_text() != rule:
        _install_sudoers(sudoers, rule, visudo=visudo)
    return launcher, sudoers


def _install_sudoers(path: Path, rule: str, *, visudo: str) -> None:
    # A broken file in sudoers.d breaks every sudo on the machine: validate it
    # before it takes the real name.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".bpfnb-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(rule)
        os.chmod(tmp, 0o440)
        check = subprocess.run([visudo, "-cf", tmp], capture_output=True, text=True)
        if check.returncode != 0:
            raise SetupError(
                "the sudoers rule for the kernel launcher does not validate",
                details=(check.stdout + check.stderr).strip(),
                hint="Report this as a bpfnb bug, with the details above.",
            )
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_user(user: str) -> str:
    if not _USER_NAME.fullmatch(user):
        raise SetupError(f"unsupported user name {user!r}", hint="Use a plain POSIX user name.")
    return user


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(f"{what} needs root", hint="Run the same command with sudo.")


def _template(name: str, **values: str) -> str:
    path = TEMPLATES / name
    try:
        return _fill(path.read_text(), values)
    except FileNotFoundError:
        raise SetupError(
            f"the kernel template {path} is missing",
            hint="Install bpfnb from its source tree (`make lab`, or `pip install -e .`).",
        ) from None


def _template_json(kind: str, **values: str) -> dict[str, Any]:
    # Filling in the parsed JSON keeps a path with quotes or backslashes intact.
    spec: dict[str, Any] = json.loads(_template(f"{kind}/kernel.json"))
    spec["argv"] = [_fill(arg, values) for arg in spec["argv"]]
    return spec


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _owner(prefix: Path) -> tuple[int, int]:
    """The uid/gid that the files under ``prefix`` should have (its owner's)."""
    probe = prefix
    while not probe.exists():
        probe = probe.parent
    st = probe.stat()
    return st.st_uid, st.st_gid


def _make_dirs(path: Path, owner: tuple[int, int]) -> None:
    # Run through sudo for a user's venv, plain mkdir would leave root-owned
    # directories in it that pip could not write later.
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o755)
        if os.geteuid() == 0:
            os.chown(directory, *owner)


def _write_if_changed(path: Path, text: str, *, mode: int) -> None:
    if path.is_file() and not path.is_symlink() and path.read_text() == text:
        path.chmod(mode)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


#: ``(flags, options)`` pairs for ``ArgumentParser.add_argument``: the command
#: line of ``bpfnb kernelspec``, handled by :func:`run`.
CLI_ARGUMENTS: Sequence[tuple[tuple[str, ...], dict[str, Any]]] = (
    (("action",), {"choices": ["install", "uninstall"]}),
    (("--prefix",), {"default": sys.prefix, "help": "sys-prefix to install into (default: this venv)"}),
    (("--user",), {"help": "non-root user to set up the sudo launcher for (run this as root)"}),
    (("--python",), {"help": "the interpreter the kernel runs (default: this one)"}),
)


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed ``bpfnb kernelspec`` command line; return the exit status."""
    if args.action == "install":
        print(install_kernelspec(args.prefix, user=args.user, python=args.python))
    else:
        uninstall_kernelspec(args.prefix, user=args.user)
    return 0
