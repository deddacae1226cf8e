"""Compile a libbpf-style C cell into a BPF object, with clang in a child process.

The cell is written to a file named ``__bpfnb_source__``, preceded by blank
lines so that the code's first line sits at the cell's own line number
(``first_line``; 2 for a cell that starts with a ``%%bpf`` line). That one
file name and numbering then reach everything downstream: clang's
diagnostics, and the BTF line info clang writes (which keeps the text of each
source line, read back from that file), hence the verifier's
``; <code> @ __bpfnb_source__:LINE`` annotations. A ``#line`` directive would
renumber diagnostics too, but BTF line info would then point at a file that
does not exist and lose the source text.

Objects are cached in ``<cache>/objects/<key>.o``, keyed on everything that
can change the bytes: the source, its first line, the flags, the kernel's BTF
(through vmlinux.h), the clang binary and libbpf's headers.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...cache import atomic_write, cache_root
from ...errors import CompileError, Interrupted, SetupError
from ...kernel.environment import kernel_btf_key
from ..diagnostics import (
    SOURCE_FILE,
    Diagnostic,
    compile_error,
    crash_report,
    is_crash,
    parse_diagnostics,
    undeclared_function,
)
from .vmlinux import vmlinux_header

__all__ = ["CompiledObject", "compile_object", "find_clang", "target_arch"]

# Bump when the way objects are built changes, so old cache entries are ignored.
_CACHE_FORMAT = "bpfnb-libbpf-object-1"
# Newest first: a newer BPF backend accepts more programs. 14 is the oldest
# checked with CO-RE, timers and BTF-defined maps.
_CLANG_VERSIONS = range(21, 13, -1)
_LIBBPF_HEADER_DIRS = ("/usr/include/bpf", "/usr/local/include/bpf")
_ARCH = {
    "x86_64": "x86", "amd64": "x86", "i686": "x86", "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "arm", "s390x": "s390", "ppc64le": "powerpc", "ppc64": "powerpc",
    "riscv64": "riscv", "loongarch64": "loongarch", "mips64": "mips",
}  # fmt: skip


@dataclass(frozen=True)
class CompiledObject:
    """A compiled BPF ELF object.

    Attributes
    ----------
    data
        The ELF bytes, ready for :meth:`LibbpfObject.open`.
    path
        Where the object lies in the cache.
    key
        The cache key (hex).
    cached
        True when the object came from the cache.
    warnings
        clang's warnings, kept from the compile that made the object.
    seconds
        Wall time this call took.
    """

    data: bytes
    path: Path
    key: str
    cached: bool
    warnings: tuple[Diagnostic, ...]
    seconds: float


def target_arch(machine: str | None = None) -> str:
    """The kernel's name for an architecture, as ``bpf_tracing.h`` wants it.

    Parameters
    ----------
    machine
        ``platform.machine()`` output; this machine's by default.

    Returns
    -------
    str
        For example ``"x86"`` or ``"arm64"``: the suffix of ``-D__TARGET_ARCH_``.
    """
    machine = machine or platform.machine()
    try:
        return _ARCH[machine]
    except KeyError:
        raise SetupError(
            f"bpfnb does not know the kernel's name for the architecture {machine!r}",
            hint="pass cflags=('-D__TARGET_ARCH_<arch>',) with the name from the kernel's arch/ directory",
        ) from None


@functools.lru_cache(maxsize=1)
def find_clang() -> str:
    """The clang to compile BPF with.

    ``$BPFNB_CLANG`` if set, else ``clang``, else the newest ``clang-N`` on PATH.

    Returns
    -------
    str
        The executable's path.

    Raises
    ------
    SetupError
        No clang is installed.
    """
    override = os.environ.get("BPFNB_CLANG")
    names = [override] if override else ["clang", *(f"clang-{v}" for v in _CLANG_VERSIONS)]
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise SetupError(
        "clang is not installed: it compiles the C code into BPF" if not override
        else f"BPFNB_CLANG names {override!r}, which is not an executable",
        hint="install it: apt-get install -y --no-install-recommends clang-14 libbpf-dev",
    )


@functools.lru_cache(maxsize=4)
def _host_include_flags(clang: str) -> tuple[str, ...]:
    """``-idirafter DIR`` for each system include directory clang searches for the host.

    ``-target bpf`` leaves out the host's multiarch directory (Debian's
    ``/usr/include/x86_64-linux-gnu``, which has ``asm/types.h``), so a cell
    including ``<linux/bpf.h>`` would not compile. libbpf's own example builds
    add the host's directories the same way, searched after everything else.
    """
    try:
        done = subprocess.run(
            [clang, "-v", "-E", "-x", "c", "-", "-o", os.devnull],
            input="", capture_output=True, text=True, errors="replace", timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ()
    lines = [line.strip() for line in done.stderr.splitlines()]
    try:
        start = lines.index("#include <...> search starts here:") + 1
        end = lines.index("End of search list.", start)
    except ValueError:
        return ()
    return tuple(flag for directory in lines[start:end] for flag in ("-idirafter", directory))


def _file_identity(path: str) -> str:
    # Path, size and mtime change whenever a package upgrade replaces the file,
    # and cost one stat, where `clang --version` would cost a process.
    real = os.path.realpath(path)
    st = os.stat(real)
    return f"{real}:{st.st_size}:{st.st_mtime_ns}"


def _libbpf_headers_identity() -> str:
    for directory in _LIBBPF_HEADER_DIRS:
        if os.path.isdir(directory):
            names = sorted(n for n in os.listdir(directory) if n.endswith(".h"))
            return ";".join(_file_identity(os.path.join(directory, n)) for n in names)
    return "no-libbpf-headers"


def _included_identity(flags: Sequence[str]) -> str:
    """The identity of every file ``-include`` puts before the cell (bpfnb's preludes): editing one is a new key."""
    return ";".join(_file_identity(path) for flag, path in zip(flags, flags[1:]) if flag == "-include")


def _cache_key(text: str, flags: Sequence[str], clang: str) -> str:
    digest = hashlib.sha256()
    for part in (_CACHE_FORMAT, text, "\0".join(flags), kernel_btf_key(), _file_identity(clang),
                 _libbpf_headers_identity(), _included_identity(flags)):
        digest.update(part.encode())
        digest.update(b"\0\0")
    return digest.hexdigest()[:32]


def _warnings_to_json(warnings: Sequence[Diagnostic]) -> bytes:
    return json.dumps([w.__dict__ for w in warnings]).encode()


def _warnings_from_json(path: Path) -> tuple[Diagnostic, ...]:
    try:
        return tuple(Diagnostic(**w) for w in json.loads(path.read_bytes()))
    except (OSError, ValueError, TypeError):
        return ()


def compile_object(
    source: str,
    *,
    cflags: Sequence[str] = (),
    first_line: int = 1,
    timeout: float = 120.0,
) -> CompiledObject:
    """Compile a libbpf-style C cell, or take the object from the cache.

    Parameters
    ----------
    source
        The C code: ``#include "vmlinux.h"``, ``<bpf/bpf_helpers.h>`` and so on,
        ``SEC(...)`` programs and BTF-defined maps.
    cflags
        Extra clang flags (``-DNAME=1``, ``-Wno-...``).
    first_line
        The cell line number of the code's first line (2 under a ``%%bpf`` line).
    timeout
        Seconds clang may take before it is killed.

    Returns
    -------
    CompiledObject

    Raises
    ------
    CompileError
        clang reported errors (``line`` is the first error's cell line), crashed,
        or timed out.
    SetupError
        clang, bpftool or the kernel's BTF is missing.
    """
    started = time.perf_counter()
    if first_line < 1:
        raise ValueError(f"first_line must be 1 or more, not {first_line}")
    text = "\n" * (first_line - 1) + source + ("" if source.endswith("\n") else "\n")
    clang = find_clang()
    flags = [
        "-target", "bpf", f"-D__TARGET_ARCH_{target_arch()}", "-O2", "-g",
        # Relative debug paths: the object does not depend on the temporary
        # directory, and BTF line info still finds the source text from cwd.
        "-fdebug-compilation-dir=.",
        # A crash must not leave reproducer files in /tmp for every bad cell.
        "-fno-crash-diagnostics",
        *_host_include_flags(clang),
        *cflags,
    ]  # fmt: skip
    key = _cache_key(text, flags, clang)
    objects = cache_root() / "objects"
    cached = objects / f"{key}.o"
    warnings_file = objects / f"{key}.warnings.json"
    try:
        data = cached.read_bytes()
    except FileNotFoundError:
        pass
    else:
        return CompiledObject(
            data, cached, key, True, _warnings_from_json(warnings_file), time.perf_counter() - started
        )

    include = vmlinux_header().parent
    with tempfile.TemporaryDirectory(prefix="bpfnb-cc-") as work:
        Path(work, SOURCE_FILE).write_text(text)
        command = [clang, *flags, "-I", str(include), "-x", "c", "-c", SOURCE_FILE, "-o", "out.o"]
        try:
            # clang runs as its own process: a crash or abort in LLVM ends that
            # process, never the one hosting the notebook.
            done = subprocess.run(
                command, cwd=work, capture_output=True, text=True, errors="replace",
                timeout=timeout, check=False,
            )  # fmt: skip
        except KeyboardInterrupt:
            raise Interrupted("compiling") from None  # subprocess.run has killed clang
        except subprocess.TimeoutExpired:
            raise CompileError(
                f"clang did not finish within {timeout:g} s and was stopped",
                hint="simplify the code (very large unrolled loops take long to compile)",
            ) from None
        diagnostics = parse_diagnostics(done.stderr, SOURCE_FILE)
        if is_crash(done.returncode, done.stderr):
            summary, last_words, line = crash_report(done.stderr, SOURCE_FILE)
            raise CompileError(
                f"clang crashed: {summary}",
                hint="this is a compiler bug, not an error in the code; rewriting the statement "
                "it names (or the whole cell) differently usually avoids it",
                details=last_words,
                line=line,
            )
        if done.returncode != 0 or any(d.is_error for d in diagnostics):
            raise _compile_error(done.stderr)
        data = Path(work, "out.o").read_bytes()
    warnings = tuple(d for d in diagnostics if not d.is_error)
    # The warnings go first: the object's presence is what marks a complete entry.
    atomic_write(warnings_file, _warnings_to_json(warnings))
    atomic_write(cached, data)
    return CompiledObject(data, cached, key, False, warnings, time.perf_counter() - started)


def _compile_error(stderr: str) -> CompileError:
    error = undeclared_function(stderr) or compile_error(stderr)
    if "file not found" in error.message and "bpf/" in error.message:
        error.hint = "install libbpf's headers: apt-get install -y --no-install-recommends libbpf-dev"
    return error
