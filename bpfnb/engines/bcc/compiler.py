"""Compiling C source with BCC and loading its functions, with readable errors.

BCC writes clang's diagnostics and the verifier's log to the process's C stdio,
and its Python only raises "Failed to compile BPF module". This module captures
those streams at the file-descriptor level and hands them to
:mod:`bpfnb.engines.diagnostics`, which speaks in the cell's line numbers (BCC
inserts text of its own, includes and a struct before every
``TRACEPOINT_PROBE``, so every user line carries a ``#line`` directive).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import errno
import functools
import os
import re
import select
import signal
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ...errors import ArgumentError, BpfnbError, CompileError, Interrupted, LoadError, SetupError
from ...kernel.libbpf import prog_load
from ..diagnostics import (
    compile_error,
    compiler_crash,
    load_error,
    number_lines,
    undeclared_function,
)
from ..interrupts import deferred_interrupts

if TYPE_CHECKING:
    import bcc

__all__ = ["DEBUG_FLAGS", "captured_c_output", "compile_source", "load_function", "parse_debug_flags"]

# Seconds a trial compile may take: long enough for any real program.
_TRIAL_TIMEOUT = 300.0
# Texts (with their flags) this process has compiled without crashing: a
# re-run of an unchanged cell needs no trial in a child.
_COMPILED_SAFELY: set[tuple[str, tuple[str, ...], int]] = set()
# BCC inserts a struct before these probes, on their own line: what follows on the line moves down.
_REWRITTEN = re.compile(r"\b(?:TRACEPOINT_PROBE|RAW_TRACEPOINT_PROBE|KFUNC_PROBE|KRETFUNC_PROBE|LSM_PROBE)\s*\([^()]*\)")
_MAP_REFUSED = re.compile(r"could not open bpf map: (?P<map>\w+), error: (?P<reason>[^\n]+)")
_MAP_HINTS = {
    "Argument list too long": "max_entries is more than the kernel will allocate for one map: make it smaller",
    "Cannot allocate memory": "the map is too large for the memory this machine can lock: make it smaller",
}
_DRIVER_ERROR = re.compile(r"^error: (unknown argument[^\n]*)", re.MULTILINE)

#: BCC's debug flags by the names ``--debug`` accepts.
DEBUG_FLAGS = {
    "llvm_ir": 0x1,
    "bpf": 0x2,
    "preprocessor": 0x4,
    "source": 0x8,
    "bpf_register_state": 0x10,
    "btf": 0x20,
}


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
    text = prelude + number_lines(source, first_line=first_line, rewritten=_REWRITTEN)
    compiled = (text, tuple(cflags), debug)
    if compiled not in _COMPILED_SAFELY:
        _trial_compile(bpf_class, text, cflags, debug, source=source, first_line=first_line)
    cwd = os.getcwd()
    try:
        with captured_c_output() as output, deferred_interrupts() as interrupted:
            bpf = bpf_class(text=text.encode(), cflags=list(cflags), debug=debug)
    except Exception as exc:  # BCC raises bare Exception for everything
        raise _compile_error(output[0] if output else "", source=source, first_line=first_line) from exc
    finally:
        # BCC chdirs into the header tree while compiling.
        os.chdir(cwd)
    if interrupted:
        bpf.cleanup()
        raise Interrupted("compiling")
    undeclared = undeclared_function(output[0])
    if undeclared:
        bpf.cleanup()
        raise undeclared
    _COMPILED_SAFELY.add(compiled)
    return bpf, output[0]


def _trial_compile(
    bpf_class: type[bcc.BPF], text: str, cflags: Sequence[str], debug: int, *, source: str, first_line: int
) -> None:
    """Compile once in a forked child, where a crash of BCC or LLVM cannot end this process.

    Some C mistakes crash the compiler itself (a typo inside a BCC map macro
    segfaults BCC's rewriter; using the result of ``__sync_fetch_and_add`` on
    a u32 aborts LLVM). The child's death becomes a :class:`CompileError`
    with the compiler's last words; a plain compile error is reported from
    the child's output without compiling a second time.
    """
    with tempfile.TemporaryFile(mode="w+b") as sink:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns into Python's frames
            _child_compile(bpf_class, text, cflags, debug, sink.fileno())
        try:
            status = _wait(pid)
        except KeyboardInterrupt:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise Interrupted("compiling") from None
        sink.seek(0)
        said = sink.read().decode("utf-8", "replace")
    if status is None:
        raise CompileError(
            f"the compiler did not finish within {_TRIAL_TIMEOUT:g} s, and was stopped",
            hint="something in the cell makes the compiler work without end (a huge unrolled loop, macros "
            "that expand without bound): make it smaller. The notebook's kernel is unharmed.",
            details=said.strip()[-4000:],
        )
    if os.WIFSIGNALED(status):
        raise compiler_crash(said, signal.Signals(os.WTERMSIG(status)).name)
    if os.WEXITSTATUS(status) != 0:
        raise _compile_error(said, source=source, first_line=first_line)
    refusal = _driver_refusal(said) or undeclared_function(said)
    if refusal:
        raise refusal


def _child_compile(bpf_class: type[bcc.BPF], text: str, cflags: Sequence[str], debug: int, out: int) -> None:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; it kills this child on Ctrl-C
        os.dup2(out, 1)
        os.dup2(out, 2)
        bpf_class(text=text.encode(), cflags=list(cflags), debug=debug)
        code = 0
    except BaseException:  # BCC's bare Exception: its words are already in the output
        code = 1
    finally:
        os._exit(code)


def _wait(pid: int) -> int | None:
    """The child's wait status; None for a child stuck for :data:`_TRIAL_TIMEOUT` s, killed (its compile would never end)."""
    handle = os.pidfd_open(pid)
    try:
        finished = bool(select.select([handle], [], [], _TRIAL_TIMEOUT)[0])
        if not finished:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(handle)
    status = os.waitpid(pid, 0)[1]
    return status if finished else None


def load_function(
    bpf: bcc.BPF, function: str, prog_type: int, *, attach_type: int | None = None, source: str, first_line: int
) -> str:
    """Load one function of a compiled module as ``prog_type``; return what BCC printed.

    ``attach_type`` is the hook's expected attach type, which the kernel
    checks at load time for some program types (``cgroup/connect4``, ``sk_lookup``).
    """
    try:
        with captured_c_output() as output:
            bpf.load_func(function.encode(), prog_type, attach_type=-1 if attach_type is None else attach_type)
    except Exception as exc:
        err = ctypes.get_errno()
        # BCC registers a do-nothing atexit hook on failure, pinning the module.
        atexit.unregister(bpf.donothing)
        log = output[0] if output else ""
        if err == errno.E2BIG:
            log = _verifier_log(bpf, function, prog_type, attach_type or 0)
            if not log:
                raise LoadError(
                    f"{function} compiled to no instructions: its body never returns",
                    hint="end every path of the function with a return statement",
                    function=function,
                ) from exc
        raise load_error(function, err, log, source=source, first_line=first_line, fallback=str(exc)) from exc
    return output[0]


def _verifier_log(bpf: bcc.BPF, function: str, prog_type: int, attach_type: int) -> str:
    """The verifier's own words for a program BCC reported as "too large" (E2BIG has several causes).

    BCC replaces the log of an E2BIG refusal with its own sentence about the
    instruction count, though the kernel also says E2BIG for a program that
    uses more than 64 maps or makes the verifier walk a million instructions.
    Loading the same instructions again with a log says which.
    """
    from bcc.libbcc import lib

    name = function.encode()
    size = lib.bpf_function_size(bpf.module, name)
    if not size:
        return ""
    insns = ctypes.string_at(lib.bpf_function_start(bpf.module, name), size)
    license = (lib.bpf_module_license(bpf.module) or b"GPL").decode()
    fd, _err, log = prog_load(prog_type, insns, license=license, expected_attach_type=attach_type, log_size=1 << 24)
    if fd >= 0:
        os.close(fd)
    return log


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


def _compile_error(output: str, *, source: str, first_line: int) -> BpfnbError:
    if "Unable to find kernel headers" in output:
        return SetupError(
            "BCC cannot find kernel headers for the running kernel.",
            hint="Run `bpfnb doctor --fix` as root (or `make lab`): it installs and links the distribution's headers.",
            details=output.strip(),
        )
    refused = _MAP_REFUSED.search(output)
    if refused:
        return _map_error(refused["map"], refused["reason"], source=source, first_line=first_line)
    return compile_error(output, compiler="BCC")


def _map_error(name: str, reason: str, *, source: str, first_line: int) -> LoadError:
    """The kernel refused a map BCC creates while compiling: name it, with its declaration's line."""
    declared = re.compile(rf"\bBPF_\w+\s*\(\s*(?:\"\w+\"\s*,[^;]*?)?\b{re.escape(name)}\b")
    line = next((first_line + i for i, text in enumerate(source.splitlines()) if declared.search(text)), None)
    hint = _MAP_HINTS.get(reason, "check the map's size (max_entries), key and value")
    if "RINGBUF" in source and reason == "Invalid argument":
        hint = "a ring buffer's size is a power of two pages (BPF_RINGBUF_OUTPUT(events, 8) is 8 pages); " + hint
    return LoadError(f"the kernel refused to create map {name!r}: {reason}", hint=hint, line=line)


def _driver_refusal(output: str) -> CompileError | None:
    """An error of clang's driver (an unknown flag in cflags): BCC prints it and compiles on regardless."""
    refused = _DRIVER_ERROR.search(output)
    if refused is None:
        return None
    return CompileError(f"clang refused the flags: {refused[1]}", hint="check --cflags (cflags=...)", details=output.strip())
