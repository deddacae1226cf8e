"""Compiling C source with BCC and loading its functions, with readable errors.

BCC writes clang's diagnostics and the verifier's log to the process's C stdio,
and its Python only raises "Failed to compile BPF module". This module captures
those streams at the file-descriptor level and turns them into
:class:`CompileError` and :class:`LoadError` whose line numbers are the cell's
own.

Line numbers: BCC inserts text into the source it compiles (includes at the
top, a struct before every ``TRACEPOINT_PROBE``), so clang's numbering drifts
from the user's. Every user line is therefore preceded by a ``#line``
directive naming a pseudo-file; clang, the BTF line info and so the verifier
log then all speak in the user's numbering.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno as errno_codes
import functools
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ._exceptions import ArgumentError, CompileError, LoadError, SetupError

if TYPE_CHECKING:
    import bcc

__all__ = [
    "DEBUG_FLAGS",
    "SOURCE_FILE",
    "cell_diagnostics",
    "compile_source",
    "load_function",
    "number_lines",
    "parse_debug_flags",
]

#: The pseudo-file name that ``#line`` directives give the user's source.
SOURCE_FILE = "__bpfnb_source__"

#: BCC's debug flags by the names ``--debug`` accepts.
DEBUG_FLAGS = {
    "llvm_ir": 0x1,
    "bpf": 0x2,
    "preprocessor": 0x4,
    "source": 0x8,
    "bpf_register_state": 0x10,
    "btf": 0x20,
}

_DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): (?P<kind>fatal error|error|warning|note): (?P<msg>.*)$")
_VERIFIER_LOCATION = re.compile(rf";\s*(?P<text>.*?)\s*@ {SOURCE_FILE}:(?P<line>\d+)\s*$")


def parse_debug_flags(value: str | int) -> int:
    """Turn ``--debug``'s argument (a number or names joined by commas) into BCC's flags."""
    if isinstance(value, int):
        return value
    flags = 0
    for word in filter(None, (w.strip().lower() for w in value.split(","))):
        if word in DEBUG_FLAGS:
            flags |= DEBUG_FLAGS[word]
            continue
        try:
            flags |= int(word, 0)
        except ValueError:
            names = ", ".join(DEBUG_FLAGS)
            raise ArgumentError(f"unknown debug flag {word!r}: use a number or some of {names}") from None
    return flags


def number_lines(source: str, *, first_line: int = 1) -> str:
    """Precede each line of ``source`` with a ``#line`` directive for ``first_line`` onwards.

    Lines continuing a macro (after a trailing backslash) get no directive,
    which would end the macro.
    """
    out: list[str] = []
    continued = False
    for number, line in enumerate(source.splitlines(), start=first_line):
        if not continued:
            out.append(f'#line {number} "{SOURCE_FILE}"')
        out.append(line)
        continued = line.endswith("\\")
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def captured_c_output() -> Iterator[list[str]]:
    """Collect what C code writes to file descriptors 1 and 2 inside the block.

    The list yielded is filled with the text when the block ends, even when it
    raises, so an exception handler outside can still read it.
    """
    libc = ctypes.CDLL(None)
    result: list[str] = []
    with tempfile.TemporaryFile(mode="w+b") as sink:
        libc.fflush(None)
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield result
        finally:
            libc.fflush(None)
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
            sink.seek(0)
            result.append(sink.read().decode("utf-8", "replace"))


def compile_source(
    source: str,
    *,
    cflags: Sequence[str] = (),
    debug: int = 0,
    first_line: int = 1,
    prelude: str = "",
) -> tuple[bcc.BPF, str]:
    """Compile ``source`` with BCC without loading or attaching anything.

    Returns the module and what BCC printed (warnings, debug output).
    ``prelude`` is C text placed before the user's lines; it keeps no line
    numbers of its own.
    """
    bpf_class = _quiet_bpf_class()
    text = prelude + number_lines(source, first_line=first_line)
    cwd = os.getcwd()
    try:
        with captured_c_output() as output:
            bpf = bpf_class(text=text.encode(), cflags=list(cflags), debug=debug)
    except Exception as exc:  # BCC raises bare Exception for everything
        raise _compile_error(output[0] if output else "") from exc
    finally:
        # BCC chdirs into the header tree while compiling.
        os.chdir(cwd)
    return bpf, output[0]


def load_function(bpf: bcc.BPF, function: str, prog_type: int, *, source: str, first_line: int) -> str:
    """Load one function of a compiled module as ``prog_type``; return what BCC printed."""
    try:
        with captured_c_output() as output:
            bpf.load_func(function.encode(), prog_type)
    except Exception as exc:
        err = ctypes.get_errno()
        # BCC registers a do-nothing atexit hook on failure, pinning the module.
        atexit.unregister(bpf.donothing)
        raise _load_error(function, err, str(exc), output[0] if output else "", source, first_line) from exc
    return output[0]


@functools.lru_cache(maxsize=None)
def _quiet_bpf_class() -> type[bcc.BPF]:
    try:
        import bcc
    except ImportError as exc:
        raise SetupError(
            "BCC's Python package (python3-bpfcc) is not importable from this Python.",
            hint="Run `make lab` from the bpfnb checkout: it installs python3-bpfcc and links it into .venv.",
        ) from exc

    class ManagedBPF(bcc.BPF):  # type: ignore[misc]
        """A BCC module whose attaching and lifetime belong to bpfnb."""

        def __init__(self, **kwargs: object) -> None:
            try:
                super().__init__(**kwargs)
            finally:
                # BCC keeps every module alive until exit; Program closes it instead.
                atexit.unregister(self.cleanup)

        def _trace_autoload(self) -> None:
            # bpfnb attaches all-or-nothing itself (see _attach); BCC's own
            # auto-attach leaves earlier probes attached when a later one fails.
            pass

    return ManagedBPF


def _split_diagnostics(output: str) -> list[tuple[re.Match[str] | None, list[str]]]:
    """Group clang's output into (header, following lines) blocks."""
    blocks: list[tuple[re.Match[str] | None, list[str]]] = []
    for line in output.splitlines():
        match = _DIAGNOSTIC.match(line)
        if match or not blocks:
            blocks.append((match, [] if match else [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def cell_diagnostics(output: str) -> str:
    """clang's diagnostics about the user's own lines, numbered as the user numbers them."""
    rendered = []
    for header, body in _split_diagnostics(output):
        if header is None or header["file"] != SOURCE_FILE:
            continue
        rendered.append(f"line {header['line']}:{header['col']}: {header['kind']}: {header['msg']}")
        rendered.extend(body)
    return "\n".join(rendered)


def _compile_error(output: str) -> Exception:
    if "Unable to find kernel headers" in output:
        return SetupError(
            "BCC cannot find kernel headers for the running kernel.",
            hint="Run `bpfnb doctor --fix` as root (or `make lab`): it installs and links the distribution's headers.",
            details=output.strip(),
        )
    details = cell_diagnostics(output)
    errors = [h for h, _ in _split_diagnostics(output) if h is not None and h["kind"] in ("error", "fatal error")]
    if not errors:
        return CompileError("BCC could not compile the program.", details=output.strip())
    first = errors[0]
    where = f" (line {first['line']})" if first["file"] == SOURCE_FILE else f" (in {first['file']})"
    count = f"{len(errors)} errors; first: " if len(errors) > 1 else ""
    return CompileError(f"the C code does not compile: {count}{first['msg']}{where}", details=details or output.strip())


def _verifier_tail(log: str, source: str, first_line: int) -> tuple[str, int | None, str]:
    """The verifier's last meaningful lines, its final complaint, and the user line it points at."""
    lines = [ln for ln in log.splitlines() if not ln.startswith("bpf: Failed to load program")]
    while lines and not lines[-1].strip():
        lines.pop()
    hint_at = next((i for i, ln in enumerate(lines) if ln.startswith("HINT:")), len(lines))
    body, hints = lines[:hint_at], lines[hint_at:]
    processed = next((i for i in range(len(body) - 1, -1, -1) if body[i].startswith("processed ")), len(body))
    complaint = next((body[i] for i in range(processed - 1, -1, -1) if body[i].strip()), "")
    user_lines = source.splitlines()
    cell_line = None
    shown = []
    for ln in body[max(0, processed - 12) : processed + 1]:
        match = _VERIFIER_LOCATION.search(ln)
        if match:
            number = int(match["line"])
            if number >= first_line:
                cell_line = number
                text = user_lines[number - first_line].strip() if number - first_line < len(user_lines) else ""
                ln = f"; line {number}: {text}"
            else:
                continue
        shown.append(ln)
    tail = "\n".join(shown + [h for h in hints if h.strip()])
    return tail, cell_line, complaint.strip()


def _load_error(function: str, err: int, bcc_message: str, log: str, source: str, first_line: int) -> Exception:
    from ._environment import has_bpf_privileges

    if err == errno_codes.EPERM and not has_bpf_privileges():
        from ._exceptions import PrivilegeError

        return PrivilegeError(
            "this process may not load BPF programs: it is not root and lacks CAP_BPF and CAP_PERFMON.",
            hint="Use the 'eBPF (bpfnb)' kernel that `make lab` installs, or run Python as root.",
        )
    tail, line, complaint = _verifier_tail(log, source, first_line)
    if err == errno_codes.EPERM and not complaint:
        return LoadError(
            f"the kernel refused to load {function} (EPERM) although this process is privileged: "
            "this program type is not available here (fentry/fexit and LSM programs need BTF support "
            "and no lockdown).",
            hint="`%bpf doctor` lists the attach types this kernel allows.",
            errno=err,
            function=function,
        )
    if tail:
        where = f" at line {line}" if line is not None else ""
        return LoadError(
            f"the verifier rejected {function}{where}: {complaint}",
            hint="Read the verifier's last lines above; rerun with `--debug bpf` for its whole log.",
            details=tail,
            errno=err,
            function=function,
        )
    reason = os.strerror(err) if err else bcc_message
    return LoadError(f"the kernel refused to load {function}: {reason}", errno=err, function=function)
