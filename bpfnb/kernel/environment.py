"""Facts about this machine that decide whether BPF programs can run here.

Pure functions over ``/proc``, ``/sys`` and ``/lib/modules``: privileges, kernel
configuration, lockdown, kernel headers, mounted filesystems, limits and BCC.
Every reader takes the path it reads as a keyword argument so that tests can
point it at a temporary tree. :func:`preflight` is what the core calls before
every cell; :func:`header_notice` is the sentence shown when the headers BCC
compiles against belong to another kernel.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import resource
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import PrivilegeError, SetupError

__all__ = [
    "KERNEL_BTF",
    "KernelHeaders",
    "Lockdown",
    "Mount",
    "bcc_version",
    "can_use_bpf",
    "clear_caches",
    "effective_capabilities",
    "find_kernel_headers",
    "has_bpf_privileges",
    "header_notice",
    "headers_release",
    "kernel_btf_key",
    "kernel_config",
    "kernel_version",
    "lockdown",
    "memlock_limit",
    "mounts",
    "parse_capabilities",
    "parse_kernel_config",
    "parse_lockdown",
    "parse_mounts",
    "preflight",
    "read_sysctl",
    "tracefs_dir",
]

#: The capabilities that matter to BPF, by their bit in the capability mask.
CAPABILITIES = {
    "CAP_NET_ADMIN": 12,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_RESOURCE": 24,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
}

#: Where the kernel exposes its own BTF (CONFIG_DEBUG_INFO_BTF=y).
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")

#: Where tracefs can be found, in the order BCC and bpfnb look.
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")

_LOCKDOWN_FILE = "/sys/kernel/security/lockdown"
_LOCKDOWN_LEVELS = ("none", "integrity", "confidentiality")


# -- versions -------------------------------------------------------------------


def kernel_version(release: str | None = None) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of a release string such as ``6.18.44-fc-v509``."""
    release = release or os.uname().release
    numbers = [int(n) for n in re.findall(r"\d+", release.split("-")[0])[:3]] + [0, 0, 0]
    return numbers[0], numbers[1], numbers[2]


# -- privileges -----------------------------------------------------------------


def parse_capabilities(status: str, *, field: str = "CapEff") -> frozenset[str]:
    """The BPF-relevant capabilities in a ``/proc/<pid>/status`` text's ``field`` mask."""
    match = re.search(rf"^{field}:\s*([0-9a-fA-F]+)\s*$", status, re.MULTILINE)
    mask = int(match.group(1), 16) if match else 0
    return frozenset(name for name, bit in CAPABILITIES.items() if mask >> bit & 1)


def effective_capabilities(*, status_path: str = "/proc/self/status") -> frozenset[str]:
    """The BPF-relevant capabilities this process holds right now."""
    return parse_capabilities(Path(status_path).read_text())


def can_use_bpf(capabilities: Iterable[str]) -> bool:
    """Whether these capabilities allow loading tracing programs.

    CAP_SYS_ADMIN does on every kernel; CAP_BPF with CAP_PERFMON does since 5.8.
    """
    caps = set(capabilities)
    return "CAP_SYS_ADMIN" in caps or {"CAP_BPF", "CAP_PERFMON"} <= caps


def has_bpf_privileges() -> bool:
    """Whether this process may load and attach tracing programs."""
    return can_use_bpf(effective_capabilities())


# -- kernel configuration -------------------------------------------------------


def parse_kernel_config(text: str) -> dict[str, str]:
    """Options of a kernel ``.config`` text; ``"n"`` for ``# CONFIG_X is not set``."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        unset = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if unset:
            options[unset.group(1)] = "n"
        elif line.startswith("CONFIG_") and "=" in line:
            name, _, value = line.partition("=")
            options[name] = value.strip('"')
    return options


def kernel_config(
    *, release: str | None = None, paths: Iterable[str] | None = None
) -> tuple[str, dict[str, str]] | None:
    """``(path, options)`` of the running kernel's configuration, or None if unreadable.

    Looks at ``/proc/config.gz`` then ``/boot/config-<release>`` unless ``paths``
    says otherwise; files ending in ``.gz`` are decompressed.
    """
    if paths is None:
        return _running_kernel_config(release or os.uname().release)
    for path in paths:
        try:
            raw = Path(path).read_bytes()
        except OSError:
            continue
        text = (gzip.decompress(raw) if path.endswith(".gz") else raw).decode(errors="replace")
        return path, parse_kernel_config(text)
    return None


@functools.lru_cache(maxsize=4)
def _running_kernel_config(release: str) -> tuple[str, dict[str, str]] | None:
    return kernel_config(paths=("/proc/config.gz", f"/boot/config-{release}"))


# -- lockdown -------------------------------------------------------------------


@dataclass(frozen=True)
class Lockdown:
    """The kernel's lockdown level and how it was learnt."""

    mode: str
    """``none``, ``integrity``, ``confidentiality`` or ``unknown``."""
    source: str
    """Where ``mode`` came from, in words."""


def parse_lockdown(text: str) -> str | None:
    """The bracketed level of ``/sys/kernel/security/lockdown`` (``none [integrity] ...``)."""
    match = re.search(r"\[(\w+)\]", text)
    return match.group(1) if match else None


def lockdown(
    *,
    path: str = _LOCKDOWN_FILE,
    config: Mapping[str, str] | None = None,
    cmdline_path: str = "/proc/cmdline",
) -> Lockdown:
    """The lockdown level, read from securityfs or else inferred from config and command line.

    securityfs is often not mounted in VMs and containers; the level is then
    the highest of the one the kernel was built to force and a ``lockdown=``
    boot parameter. Distribution kernels that lock down under Secure Boot
    cannot be told apart this way: the mode is then ``unknown``.
    """
    try:
        mode = parse_lockdown(Path(path).read_text())
    except OSError:
        mode = None
    if mode:
        return Lockdown(mode, f"read from {path}")
    if config is None:
        found = kernel_config()
        config = found[1] if found else {}
    if config.get("CONFIG_SECURITY_LOCKDOWN_LSM", "n") == "n" and config:
        return Lockdown("none", "the kernel is built without the lockdown LSM")
    reasons = []
    level = 0
    for index, name in enumerate(_LOCKDOWN_LEVELS):
        option = f"CONFIG_LOCK_DOWN_KERNEL_FORCE_{name.upper()}"
        if config.get(option) == "y":
            level = max(level, index)
            reasons.append(f"{option}=y")
    try:
        boot = re.search(r"(?:^|\s)lockdown=(\w+)", Path(cmdline_path).read_text())
    except OSError:
        boot = None
    if boot and boot.group(1) in _LOCKDOWN_LEVELS:
        level = max(level, _LOCKDOWN_LEVELS.index(boot.group(1)))
        reasons.append(f"boot parameter lockdown={boot.group(1)}")
    unreadable = f"{path} is not readable (securityfs not mounted?)"
    if not reasons:
        return Lockdown("unknown", unreadable)
    return Lockdown(_LOCKDOWN_LEVELS[level], f"inferred from {' and '.join(reasons)}; {unreadable}")


# -- mounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/mounts``."""

    source: str
    target: str
    fstype: str


def parse_mounts(text: str) -> list[Mount]:
    """The mounts of a ``/proc/mounts`` text (octal escapes such as ``\\040`` decoded)."""

    def unescape(field: str) -> str:
        return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)

    found = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            found.append(Mount(unescape(fields[0]), unescape(fields[1]), fields[2]))
    return found


def mounts(fstype: str, *, mounts_path: str = "/proc/mounts") -> list[str]:
    """Mount points of filesystems of type ``fstype`` (``tracefs``, ``debugfs``, ``bpf``)."""
    return [m.target for m in parse_mounts(Path(mounts_path).read_text()) if m.fstype == fstype]


def tracefs_dir(*, candidates: Iterable[str] = TRACEFS_DIRS) -> str | None:
    """The tracefs directory BCC can use (one with ``events/``), or None."""
    return next((d for d in candidates if os.path.isdir(os.path.join(d, "events"))), None)


# -- kernel headers -------------------------------------------------------------


@dataclass(frozen=True)
class KernelHeaders:
    """Where BCC will find kernel headers, and which kernel they belong to."""

    running: str
    """``uname -r`` of the running kernel."""
    path: str | None
    """The header tree BCC will use, or None if there is none."""
    origin: str
    """How BCC finds it: ``BCC_KERNEL_SOURCE``, the build link, or ``kheaders``."""
    release: str | None = None
    """The release the headers were built for (``6.1.0-56-amd64``), if known."""
    version: str | None = None
    """The upstream version of the headers (``6.1.192``), if known."""

    @property
    def found(self) -> bool:
        return self.path is not None

    @property
    def matches(self) -> bool:
        """Whether the headers are the running kernel's own."""
        return self.origin == "kheaders" or (self.found and self.release == self.running)

    def describe(self) -> str:
        """The headers' release in words, e.g. ``6.1.0-56-amd64, Linux 6.1.192``."""
        if self.origin == "kheaders":
            return f"{self.running} (the kernel's built-in kheaders)"
        text = self.release or "unknown version"
        if self.version and self.version != self.release:
            text += f", Linux {self.version}"
        return text


def headers_release(build_dir: str) -> tuple[str | None, str | None]:
    """``(release, upstream version)`` of a header tree such as ``/lib/modules/<r>/build``.

    The release is ``UTS_RELEASE`` from ``include/generated/utsrelease.h``, which
    is what ``uname -r`` says on the kernel the headers came from; failing that,
    the tree's directory name without its ``linux-headers-`` prefix. The version
    comes from ``include/config/kernel.release`` or the Makefile's
    ``VERSION``/``PATCHLEVEL``/``SUBLEVEL`` (following Debian's one-line
    ``include`` Makefile to the common tree).
    """
    root = Path(build_dir)
    release = None
    try:
        match = re.search(r'UTS_RELEASE\s+"([^"]+)"', (root / "include/generated/utsrelease.h").read_text())
        release = match.group(1) if match else None
    except OSError:
        pass
    if release is None:
        name = root.resolve().name
        release = name.removeprefix("linux-headers-") if name.startswith("linux-headers-") else None
    try:
        version = (root / "include/config/kernel.release").read_text().strip() or None
    except OSError:
        version = _makefile_version(root / "Makefile")
    return release, version


def _makefile_version(makefile: Path, *, depth: int = 0) -> str | None:
    try:
        text = makefile.read_text()
    except OSError:
        return None
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL)\s*=\s*(\d*)\s*$", text, re.MULTILINE))
    if fields.get("VERSION"):
        return ".".join(fields[k] for k in ("VERSION", "PATCHLEVEL", "SUBLEVEL") if fields.get(k))
    included = re.search(r"^include\s+(\S+/Makefile)\s*$", text, re.MULTILINE)
    if included and depth < 3:
        return _makefile_version(Path(included.group(1)), depth=depth + 1)
    return None


def find_kernel_headers(
    *,
    release: str | None = None,
    modules_root: str = "/lib/modules",
    environ: Mapping[str, str] | None = None,
    kheaders: str = "/sys/kernel/kheaders.tar.xz",
) -> KernelHeaders:
    """The header tree BCC will compile against, searched in BCC's own order."""
    running = release or os.uname().release
    env = os.environ if environ is None else environ
    candidates = []
    if env.get("BCC_KERNEL_SOURCE"):
        candidates.append((env["BCC_KERNEL_SOURCE"], "BCC_KERNEL_SOURCE"))
    suffix = env.get("BCC_KERNEL_MODULES_SUFFIX", "build")
    candidates.append((os.path.join(modules_root, running, suffix), f"{modules_root}/{running}/{suffix}"))
    for path, origin in candidates:
        if os.path.isdir(path):
            return KernelHeaders(running, path, origin, *headers_release(path))
    if os.path.exists(kheaders):
        return KernelHeaders(running, kheaders, "kheaders", running)
    return KernelHeaders(running, None, candidates[-1][1])


def header_notice() -> str | None:
    """What to tell users when BCC compiles against another kernel's headers.

    None when the headers match the running kernel (or are missing: that is a
    :class:`SetupError` from :func:`preflight`, not a notice).
    """
    headers = _cached_headers()
    if not headers.found or headers.matches:
        return None
    return (
        f"The installed kernel headers ({headers.describe()}) do not match the running kernel "
        f"({headers.running}). BPF helpers, maps and tracepoint `args` are right in BCC cells; a BCC cell "
        "that reads a kernel struct field the headers place elsewhere is refused (LayoutError). Read kernel "
        "structs in libbpf cells (`#include \"vmlinux.h\"`, `BPF_CORE_READ`): they take the layout from the "
        "running kernel's BTF."
    )


@functools.lru_cache(maxsize=1)
def _cached_headers() -> KernelHeaders:
    return find_kernel_headers()


def clear_caches() -> None:
    """Forget what was learnt about headers and mounts (after ``bpfnb doctor --fix``)."""
    _cached_headers.cache_clear()


# -- BTF -----------------------------------------------------------------------


def _read_btf(btf_path: Path) -> bytes:
    try:
        return btf_path.read_bytes()
    except FileNotFoundError:
        raise SetupError(
            f"this kernel has no BTF ({btf_path} does not exist), so CO-RE programs cannot be built",
            hint="boot a kernel built with CONFIG_DEBUG_INFO_BTF=y (every major distribution's is)",
        ) from None
    except OSError as exc:
        raise SetupError(
            f"cannot read the kernel's BTF at {btf_path}: {exc.strerror}",
            hint="check the permissions of /sys/kernel/btf (it is normally world-readable)",
        ) from exc


@functools.lru_cache(maxsize=4)
def kernel_btf_key(btf_path: Path = KERNEL_BTF) -> str:
    """A short identifier of the kernel build, taken from its BTF.

    Parameters
    ----------
    btf_path
        The kernel BTF file.

    Returns
    -------
    str
        24 hex digits of the SHA-256 of the BTF. Computed once per process
        (about 10 ms for 5 MB): the running kernel cannot change under it.
    """
    return hashlib.sha256(_read_btf(btf_path)).hexdigest()[:24]


# -- limits, sysctls, BCC -------------------------------------------------------


def memlock_limit() -> int:
    """This process's soft RLIMIT_MEMLOCK in bytes; -1 means unlimited.

    Only kernels before 5.11 charge BPF maps and programs to it; newer ones
    account BPF memory to the memory cgroup.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return -1 if soft == resource.RLIM_INFINITY else soft


def read_sysctl(name: str, *, root: str = "/proc/sys") -> str | None:
    """The value of sysctl ``name`` (``kernel.bpf_stats_enabled``), or None if absent."""
    try:
        return Path(root, *name.split(".")).read_text().strip()
    except OSError:
        return None


def bcc_version() -> str:
    """The version of the importable BCC; raises ``ImportError`` if there is none.

    PyPI's unrelated ``bcc`` package imports fine but has no ``BPF``: that
    counts as missing.
    """
    import bcc

    if not hasattr(bcc, "BPF"):
        raise ImportError(f"the 'bcc' found at {bcc.__file__} is not BCC (PyPI's unrelated package?)")
    return str(getattr(bcc, "__version__", "unknown version"))


# -- preflight ------------------------------------------------------------------

# Checks that passed once stay passed for the life of the process: privileges,
# BCC and headers do not go away, and re-testing them on every cell would cost
# more than the cell. Failures are re-checked, so a fix applies without restart.
_passed: set[str] = set()


def preflight(*, needs_tracefs: bool, needs_bcc: bool = True) -> None:
    """Raise if this process cannot compile, load and attach a program now.

    Parameters
    ----------
    needs_tracefs
        Whether the program attaches to tracepoints (BCC reads their format
        and ids from tracefs).
    needs_bcc
        Whether BCC and the kernel headers it compiles against are needed.

    Raises
    ------
    PrivilegeError
        The process is neither root nor holds CAP_BPF and CAP_PERFMON.
    SetupError
        BCC, the kernel headers or (if needed) tracefs are missing.
    """
    if "privileges" not in _passed:
        if not has_bpf_privileges():
            raise PrivilegeError(
                "this process is not root and lacks CAP_BPF/CAP_PERFMON, so it may not load BPF programs: "
                "use the 'eBPF (bpfnb)' kernel, which `make lab` installs (or run Python with sudo)."
            )
        _passed.add("privileges")
    if needs_bcc and "bcc" not in _passed:
        try:
            bcc_version()
        except (ImportError, OSError) as exc:
            raise SetupError(
                f"BCC cannot be imported ({exc}): install it with `make lab` "
                "(or `sudo apt-get install python3-bpfcc` and make the venv see it)."
            ) from None
        _passed.add("bcc")
    if needs_bcc and "headers" not in _passed:
        if not find_kernel_headers().found:
            raise SetupError(
                f"kernel headers not found (BCC needs /lib/modules/{os.uname().release}/build): "
                "run `make lab` or `sudo bpfnb doctor --fix`."
            )
        _passed.add("headers")
    if needs_tracefs and "tracefs" not in _passed:
        if tracefs_dir() is None:
            raise SetupError(
                "tracefs is not mounted: run `sudo mount -t tracefs none /sys/kernel/tracing` "
                "or `sudo bpfnb doctor --fix`."
            )
        _passed.add("tracefs")
