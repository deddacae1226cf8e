"""``bpfnb doctor``: every precondition of bpfnb, its state, and the exact fix.

:func:`report` gathers the facts of :mod:`bpfnb.kernel.environment` and the attach
tries of :mod:`bpfnb.kernel.features` into one :class:`DoctorReport`. A row is
``fail`` only when something bpfnb needs is missing (the shell command then
exits non-zero); optional features that are off are ``warn``. :func:`fix` does
what can safely be done as root: mount tracefs, debugfs and bpffs, and link
the distribution's generic kernel headers where the running kernel has none
of its own.
"""

from __future__ import annotations

import ctypes
import html
import os
import re
import subprocess
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..display.html import Markup, card, code, details, heading, note, table, text_table
from ..engines.bpftrace.runner import find_bpftrace
from ..errors import PrivilegeError, SetupError
from ..kernel import environment as env
from ..kernel.features import AttachTypeResult, try_attach_types

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Check", "DoctorReport", "FixReport", "fix", "link_generic_headers", "mount_filesystems", "report"]

STATES = ("ok", "warn", "fail", "skip")
_STATE_CLASS = {"ok": "ok", "done": "ok", "warn": "note", "fail": "bad", "skip": ""}

#: Kernel options worth checking: option -> (what it gives, needed by bpfnb at all).
KERNEL_OPTIONS = {
    "CONFIG_BPF_SYSCALL": ("the bpf() system call", True),
    "CONFIG_BPF_EVENTS": ("BPF programs on kprobes, uprobes and tracepoints", False),
    "CONFIG_DEBUG_INFO_BTF": ("kernel BTF (tp_btf, fentry, CO-RE)", False),
    "CONFIG_KPROBES": ("kprobes and kretprobes", False),
    "CONFIG_UPROBES": ("uprobes and uretprobes", False),
    "CONFIG_TRACEPOINTS": ("tracepoints", False),
    "CONFIG_FTRACE": ("tracefs (tracepoint formats and ids)", False),
    "CONFIG_PERF_EVENTS": ("perf events (sampling, perf buffers)", False),
    "CONFIG_BPF_JIT": ("compiled (not interpreted) BPF programs", False),
    "CONFIG_NET_CLS_BPF": ("tc classifier programs", False),
    "CONFIG_XDP_SOCKETS": ("AF_XDP sockets", False),
}

#: Filesystems :func:`fix` mounts: name -> (type, mount point, what needs it, needed at all).
FILESYSTEMS = {
    "tracefs": ("tracefs", "/sys/kernel/tracing", "tracepoints (BCC reads their ids and formats)", True),
    "debugfs": ("debugfs", "/sys/kernel/debug", "older tools that look for /sys/kernel/debug/tracing", False),
    "bpffs": ("bpf", "/sys/fs/bpf", "pinning maps and programs", False),
}

_ATTACH_FIXES = {
    "tracepoint": "mount tracefs (`sudo bpfnb doctor --fix`); see CONFIG_TRACEPOINTS and CONFIG_BPF_EVENTS",
    "kprobe": "use a kernel built with CONFIG_KPROBES=y; here use tracepoints, raw tracepoints or tp_btf",
    "fentry": "use a kernel that allows fentry (BTF, no lockdown policy against it); here use tp_btf or raw tracepoints",
    "uprobe": "use a kernel built with CONFIG_UPROBES=y",
    "perf_event": "run as root or with CAP_PERFMON",
}


@dataclass(frozen=True)
class Check:
    """One row of the doctor's table."""

    check: str
    state: str
    """``ok``, ``warn``, ``fail`` or ``skip`` (``done`` in a :class:`FixReport`)."""
    detail: str
    fix: str = ""
    group: str = ""
    """Which part of the machine it checks: set-up, kernel config, attach types."""


#: States that need the reader's attention: they come first, with their fixes.
PROBLEMS = ("fail", "warn")


def _problems_first(rows: Sequence[Check], ungrouped: str) -> tuple[list[Check], dict[str, list[Check]]]:
    """The failures and warnings (failures first), and the other rows by group (``ungrouped`` if none)."""
    problems = sorted((r for r in rows if r.state in PROBLEMS), key=lambda r: PROBLEMS.index(r.state))
    groups: dict[str, list[Check]] = {}
    for row in rows:
        if row.state not in PROBLEMS:
            groups.setdefault(row.group or ungrouped, []).append(row)
    return problems, groups


def _counts(rows: Sequence[Check]) -> str:
    counts = {state: sum(row.state == state for row in rows) for state in (*STATES, "done")}
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n)


def _text_table(rows: Sequence[Check], width: int) -> str:
    lines: list[list[str]] = []
    for row in rows:
        detail = textwrap.wrap(row.detail, width, break_on_hyphens=False) or [""]
        lines.append([row.check, row.state, detail[0]])
        lines.extend(["", "", more] for more in detail[1:])
        if row.fix:
            lines.extend(["", "", line] for line in textwrap.wrap(f"fix: {row.fix}", width, break_on_hyphens=False))
    return text_table(["check", "state", "detail"], lines)


def _text(title: str, rows: Sequence[Check], ungrouped: str, *, width: int = 72) -> str:
    problems, groups = _problems_first(rows, ungrouped)
    sections = [title]
    if problems:
        sections.append(f"Needs attention ({len(problems)}):\n" + _text_table(problems, width))
    for group, checks in groups.items():
        sections.append(f"{group}: {_counts(checks)}\n" + _text_table(checks, width))
    return "\n\n".join(sections)


def _state(state: str) -> Markup:
    return Markup(f'<b class="bpfnb-{_STATE_CLASS.get(state, "")}">{html.escape(state)}</b>')


def _detail(row: Check) -> Markup:
    """The detail, and under it the fix: prose gets the table's width instead of a narrow column each."""
    fix = f'<div class="bpfnb-fix"><b>fix:</b> {code(row.fix)}</div>' if row.fix else ""
    return Markup(f"{code(row.detail)}{fix}")


def _html_table(rows: Sequence[Check]) -> Markup:
    cells = ((r.check, _state(r.state), _detail(r)) for r in rows)
    return table(["check", "state", "detail"], cells, nowrap=("check", "state"))


def _html(title: str, rows: Sequence[Check], ungrouped: str) -> str:
    problems, groups = _problems_first(rows, ungrouped)
    parts: list[str] = []
    if problems:
        parts += [heading(f"Needs attention ({len(problems)})"), _html_table(problems)]
    else:
        parts.append(note("Nothing needs attention.", kind="ok"))
    for group, checks in groups.items():
        parts.append(details(f"{group}: {_counts(checks)}", _html_table(checks)))
    return card(title, *parts)


class _Table:
    """Rows with a text table as ``repr``, an HTML table and a DataFrame; problems come first in both."""

    name = ""
    #: The heading of rows that name no group.
    ungrouped = "Other checks"

    def __init__(self, rows: Sequence[Check]) -> None:
        self.rows = tuple(rows)

    def __getitem__(self, check: str) -> Check:
        for row in self.rows:
            if row.check == check:
                return row
        raise KeyError(check)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def title(self) -> str:
        """The table's heading, with a count of its states."""
        return f"{self.name}: {_counts(self.rows)}"

    def __repr__(self) -> str:
        return _text(self.title, self.rows, self.ungrouped)

    def _repr_html_(self) -> str:
        return _html(self.title, self.rows, self.ungrouped)

    def df(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame with columns check, state, detail, fix, group."""
        import pandas as pd

        return pd.DataFrame([vars(r) for r in self.rows], columns=["check", "state", "detail", "fix", "group"])


class DoctorReport(_Table):
    """Every precondition of bpfnb on this machine; ``ok`` is False if one fails."""

    name = "bpfnb doctor"

    @property
    def ok(self) -> bool:
        return all(row.state != "fail" for row in self.rows)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(row for row in self.rows if row.state == "fail")


class FixReport(_Table):
    """What ``bpfnb doctor --fix`` did; iterating it gives one line per action."""

    name = "bpfnb doctor --fix"
    ungrouped = "Actions"

    def __iter__(self) -> Iterator[str]:
        for row in self.rows:
            yield f"{row.check}: {row.state}: {row.detail}"


# -- the checks -----------------------------------------------------------------


def _privileges() -> list[Check]:
    caps = env.effective_capabilities()
    who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
    held = ", ".join(sorted(caps)) or "no BPF-related capabilities"
    if not env.can_use_bpf(caps):
        fix = "use the 'eBPF (bpfnb)' Jupyter kernel that `make lab` installs, or run with sudo"
        return [Check("privileges", "fail", f"{who}: {held}; needs root or CAP_BPF + CAP_PERFMON", fix)]
    if "CAP_NET_ADMIN" not in caps:
        fix = "run as root (or add CAP_NET_ADMIN) to attach XDP programs to network devices"
        return [Check("privileges", "warn", f"{who}: {held}; no CAP_NET_ADMIN", fix)]
    return [Check("privileges", "ok", f"{who}: {held}")]


def _bpf_syscall(tries: Sequence[AttachTypeResult]) -> list[Check]:
    if any(result.ok for result in tries):
        return [Check("bpf() syscall", "ok", "programs load and attach")]
    simplest = next(result for result in tries if result.attach == "socket_filter")
    detail = f"not even a socket filter loads: {simplest.reason}"
    return [Check("bpf() syscall", "fail", detail, "see the privileges and kernel config rows")]


def _kernel_config() -> list[Check]:
    release = os.uname().release
    found = env.kernel_config()
    if found is None:
        where = f"/proc/config.gz and /boot/config-{release} are missing"
        return [Check("kernel config", "skip", where, "kernel options cannot be checked; the probes below still run")]
    path, options = found
    rows = [Check("kernel config", "ok", f"Linux {release}, config read from {path}")]
    for option, (gives, needed) in KERNEL_OPTIONS.items():
        value = options.get(option, "n")
        if value in ("y", "m"):
            rows.append(Check(option, "ok", f"={value}: {gives}"))
        else:
            state = "fail" if needed else "warn"
            rows.append(Check(option, state, f"off: no {gives}", f"use a kernel built with {option}=y"))
    btf = "/sys/kernel/btf/vmlinux"
    if os.path.exists(btf):
        rows.append(Check("BTF", "ok", f"{btf} present"))
    else:
        rows.append(Check("BTF", "warn", f"{btf} missing: no tp_btf or fentry", "use a kernel built with CONFIG_DEBUG_INFO_BTF=y"))
    return rows


def _lockdown() -> list[Check]:
    state = env.lockdown()
    fix = "lockdown cannot be lowered while the kernel runs: boot without it (Secure Boot off, no lockdown= parameter)"
    effects = {
        "none": "",
        "integrity": ": bpf_probe_write_user is refused; reading kernel and user memory works",
        "confidentiality": ": reading kernel memory, kprobes, perf events and tracefs are refused",
    }
    if state.mode not in effects:
        return [Check("lockdown", "skip", state.source, "`sudo mount -t securityfs none /sys/kernel/security` to read it")]
    detail = f"{state.mode}{effects[state.mode]}; {state.source}"
    return [Check("lockdown", "ok" if state.mode == "none" else "warn", detail, fix if state.mode != "none" else "")]


def _headers() -> list[Check]:
    headers = env.find_kernel_headers()
    if not headers.found:
        fix = "`sudo bpfnb doctor --fix` (links installed generic headers) or `make lab` (installs them)"
        return [Check("kernel headers", "fail", f"none: BCC needs {headers.origin}", fix)]
    where = headers.path if headers.origin == "kheaders" else f"{headers.origin} -> {os.path.realpath(headers.path or '')}"
    if headers.matches:
        return [Check("kernel headers", "ok", f"{headers.describe()}, matching the running kernel ({where})")]
    notice = env.header_notice() or ""
    fix = f"read kernel structs in libbpf cells (CO-RE); or install linux-headers-{headers.running} if your distribution has it"
    return [Check("kernel headers", "warn", f"{where}. {notice}", fix)]


def _mounts() -> list[Check]:
    rows = []
    for name, (fstype, target, needs, needed) in FILESYSTEMS.items():
        where = env.mounts(fstype)
        if where:
            rows.append(Check(name, "ok", f"mounted on {', '.join(where)}"))
        else:
            fix = f"`sudo mount -t {fstype} none {target}` or `sudo bpfnb doctor --fix`"
            rows.append(Check(name, "fail" if needed else "warn", f"not mounted: needed for {needs}", fix))
    return rows


def _memlock() -> list[Check]:
    limit = env.memlock_limit()
    shown = "unlimited" if limit < 0 else f"{limit // 1024} KiB"
    version = env.kernel_version()
    if version >= (5, 11, 0):
        kernel = ".".join(map(str, version[:2]))
        return [Check("memlock limit", "ok", f"{shown} (unused: kernel {kernel} charges BPF memory to the memory cgroup)")]
    if limit < 0 or limit >= 64 << 20:
        return [Check("memlock limit", "ok", shown)]
    fix = "`ulimit -l unlimited` before starting Python (BCC raises it itself when allowed)"
    return [Check("memlock limit", "warn", f"{shown}: maps may fail to allocate", fix)]


def _stats() -> list[Check]:
    value = env.read_sysctl("kernel.bpf_stats_enabled")
    if value is None:
        return [Check("bpf_stats_enabled", "skip", "kernel.bpf_stats_enabled does not exist (kernel < 5.1)")]
    if value == "1":
        return [Check("bpf_stats_enabled", "ok", "on: programs' run counts and run times are collected")]
    fix = "`sudo sysctl -w kernel.bpf_stats_enabled=1` or `%bpf stats on` (a small cost on every program run)"
    return [Check("bpf_stats_enabled", "ok", "off: programs' run counts and run times are not collected", fix)]


def _bcc() -> list[Check]:
    try:
        version = env.bcc_version()
    except (ImportError, OSError) as exc:
        fix = "`make lab`, or `sudo apt-get install python3-bpfcc` and make the venv see /usr/lib/python3/dist-packages/bcc"
        return [Check("BCC", "fail", f"cannot import bcc: {exc}", fix)]
    import bcc

    return [Check("BCC", "ok", f"{version} ({os.path.dirname(bcc.__file__ or '')})")]


def _bpftrace() -> list[Check]:
    """bpftrace is optional: only %%bpftrace cells need it."""
    try:
        path = find_bpftrace()
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (SetupError, OSError, subprocess.SubprocessError) as exc:
        detail = exc.message if isinstance(exc, SetupError) else f"cannot run it: {exc}"
        return [Check("bpftrace", "warn", detail, "`make lab`, or `sudo apt-get install bpftrace`")]
    return [Check("bpftrace", "ok", f"{version or 'bpftrace'} ({path}), for %%bpftrace cells")]


def _attach_types(tries: Sequence[AttachTypeResult]) -> list[Check]:
    privileged = env.has_bpf_privileges()
    rows = []
    for result in tries:
        if result.ok:
            rows.append(Check(f"attach: {result.attach}", "ok", result.reason))
            continue
        state = "fail" if result.attach == "tracepoint" else "warn"
        if result.verdict == "refused" and not privileged:
            fix = "run as root, or with CAP_BPF + CAP_PERFMON (+ CAP_NET_ADMIN for devices)"
        else:
            fix = _ATTACH_FIXES.get(result.attach, "see the kernel config rows")
        rows.append(Check(f"attach: {result.attach}", state, f"{result.verdict}: {result.reason}", fix))
    return rows


def report(*, refresh: bool = False) -> DoctorReport:
    """Check every precondition of bpfnb on this machine.

    Parameters
    ----------
    refresh
        Probe the attach types again instead of reusing this process's results.

    Returns
    -------
    DoctorReport
        Rows of (check, state, detail, fix); ``.ok`` is False if a required
        check failed.
    """
    if refresh:
        try_attach_types.cache_clear()
    tries = try_attach_types()
    groups = {
        "Set-up": [
            *_privileges(), *_bpf_syscall(tries), *_bcc(), *_bpftrace(), *_headers(), *_mounts(), *_lockdown(),
            *_memlock(), *_stats(),
        ],
        "Kernel config": _kernel_config(),
        "Attach types (tried for real)": _attach_types(tries),
    }  # fmt: skip
    return DoctorReport([replace(row, group=group) for group, rows in groups.items() for row in rows])


# -- fixes ----------------------------------------------------------------------


def mount_filesystems(*, mounts_path: str = "/proc/mounts") -> list[Check]:
    """Mount whichever of tracefs, debugfs and bpffs is not mounted yet."""
    libc = ctypes.CDLL(None, use_errno=True)
    rows = []
    for name, (fstype, target, _, _) in FILESYSTEMS.items():
        where = env.mounts(fstype, mounts_path=mounts_path)
        if where:
            rows.append(Check(f"mount {name}", "ok", f"already mounted on {', '.join(where)}"))
        elif not os.path.isdir(target):
            rows.append(Check(f"mount {name}", "skip", f"{target} does not exist (kernel built without {fstype}?)"))
        elif libc.mount(b"none", target.encode(), fstype.encode(), 0, None) != 0:
            err = ctypes.get_errno()
            rows.append(Check(f"mount {name}", "fail", f"mount -t {fstype} none {target}: {os.strerror(err)}"))
        else:
            rows.append(Check(f"mount {name}", "done", f"mounted {fstype} on {target}"))
    return rows


_HEADER_DIR = re.compile(r"^linux-headers-(?P<version>\d+\.\d+(?:\.\d+)?(?:-\d+)?)-(?P<flavour>[a-z0-9][a-z0-9-]*)$")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def _generic_headers(src_root: str, machine: str) -> tuple[Path, Path | None] | None:
    """The newest installed (arch tree, common tree) of Debian's or Ubuntu's header packages."""
    flavours = {"x86_64": ("amd64", "generic"), "aarch64": ("arm64", "generic")}.get(machine, ("generic",))
    found = []
    for entry in Path(src_root).glob("linux-headers-*"):
        match = _HEADER_DIR.match(entry.name)
        if match and match["flavour"] in flavours and entry.is_dir():
            version = match["version"]
            common = next(
                (c for c in (Path(src_root, f"linux-headers-{version}-common"), Path(src_root, f"linux-headers-{version}")) if c.is_dir()),
                None,
            )
            found.append((_version_key(version), flavours.index(match["flavour"]), entry, common))
    if not found:
        return None
    _, _, arch, common = max(found, key=lambda f: (f[0], -f[1]))
    return arch, common


def link_generic_headers(
    *,
    release: str | None = None,
    modules_root: str = "/lib/modules",
    src_root: str = "/usr/src",
    machine: str | None = None,
) -> list[Check]:
    """Point ``<modules_root>/<release>/build`` (and ``source``) at installed generic headers.

    Only when ``build`` is missing (or a dangling link): headers the system
    already has are never replaced. Debian's ``linux-headers-<ver>-<arch>``
    gets ``source`` -> ``linux-headers-<ver>-common``; Ubuntu's
    ``linux-headers-<ver>-generic`` gets ``source`` -> ``linux-headers-<ver>``.
    The newest version present wins.
    """
    release = release or os.uname().release
    base = Path(modules_root, release)
    build, source = base / "build", base / "source"
    if build.is_dir():
        return [Check("link headers", "ok", f"{build} already exists (-> {os.path.realpath(build)})")]
    picked = _generic_headers(src_root, machine or os.uname().machine)
    if picked is None:
        detail = f"{build} is missing and no generic headers are installed in {src_root}"
        return [Check("link headers", "fail", f"{detail}; run `make lab` to install them")]
    arch, common = picked
    base.mkdir(parents=True, exist_ok=True)
    links = [(build, arch)] + ([(source, common)] if common is not None and not source.is_dir() else [])
    for link, target in links:
        if link.is_symlink():  # dangling: is_dir() was False above
            link.unlink()
        link.symlink_to(target)
    done = ", ".join(f"{link} -> {target}" for link, target in links)
    return [Check("link headers", "done", f"linked {done} (headers for another kernel: see `bpfnb doctor`)")]


def fix(
    *,
    release: str | None = None,
    modules_root: str = "/lib/modules",
    src_root: str = "/usr/src",
    mounts_path: str = "/proc/mounts",
) -> FixReport:
    """Mount the filesystems bpfnb needs and link generic headers; needs root.

    Safe to run again: what is already in place is left alone. The keyword
    arguments are passed on to :func:`mount_filesystems` and
    :func:`link_generic_headers`.

    Raises
    ------
    PrivilegeError
        Not running as root.
    """
    if os.geteuid() != 0:
        raise PrivilegeError(
            "`bpfnb doctor --fix` mounts filesystems and writes to /lib/modules, so it needs root.",
            hint="Run `sudo bpfnb doctor --fix`.",
        )
    rows = mount_filesystems(mounts_path=mounts_path)
    rows += link_generic_headers(release=release, modules_root=modules_root, src_root=src_root)
    # What the fixes changed must be seen by the next report and the next cell.
    try_attach_types.cache_clear()
    env.clear_caches()
    return FixReport(rows)
