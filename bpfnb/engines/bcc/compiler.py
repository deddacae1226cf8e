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
import functools
import os
import select
import signal
import tempfile
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ...errors import ArgumentError, BpfnbError, Interrupted, SetupError
from ..diagnostics import compile_error, compiler_crash, load_error, number_lines
from ..interrupts import deferred_interrupts

if TYPE_CHECKING:
    import bcc

__all__ = ["DEBUG_FLAGS", "captured_c_output", "compile_source", "load_function", "parse_debug_flags"]

# Seconds a trial compile may take: long enough for any real program.
_TRIAL_TIMEOUT = 300.0

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
    text = prelude + number_lines(source, first_line=first_line)
    _trial_compile(bpf_class, text, cflags, debug)
    cwd = os.getcwd()
    try:
        with captured_c_output() as output, deferred_interrupts() as interrupted:
            bpf = bpf_class(text=text.encode(), cflags=list(cflags), debug=debug)
    except Exception as exc:  # BCC raises bare Exception for everything
        raise _compile_error(output[0] if output else "") from exc
    finally:
        # BCC chdirs into the header tree while compiling.
        os.chdir(cwd)
    if interrupted:
        bpf.cleanup()
        raise Interrupted("compiling")
    return bpf, output[0]


def _trial_compile(bpf_class: type[bcc.BPF], text: str, cflags: Sequence[str], debug: int) -> None:
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
    if os.WIFSIGNALED(status):
        raise compiler_crash(said, signal.Signals(os.WTERMSIG(status)).name)
    if os.WEXITSTATUS(status) != 0:
        raise _compile_error(said)


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


def _wait(pid: int) -> int:
    """The child's wait status; a child stuck for minutes is killed (its compile would never end)."""
    handle = os.pidfd_open(pid)
    try:
        if not select.select([handle], [], [], _TRIAL_TIMEOUT)[0]:
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(handle)
    return os.waitpid(pid, 0)[1]


def load_function(bpf: bcc.BPF, function: str, prog_type: int, *, source: str, first_line: int) -> str:
    """Load one function of a compiled module as ``prog_type``; return what BCC printed."""
    try:
        with captured_c_output() as output:
            bpf.load_func(function.encode(), prog_type)
    except Exception as exc:
        err = ctypes.get_errno()
        # BCC registers a do-nothing atexit hook on failure, pinning the module.
        atexit.unregister(bpf.donothing)
        log = output[0] if output else ""
        raise load_error(function, err, log, source=source, first_line=first_line, fallback=str(exc)) from exc
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


def _compile_error(output: str) -> BpfnbError:
    if "Unable to find kernel headers" in output:
        return SetupError(
            "BCC cannot find kernel headers for the running kernel.",
            hint="Run `bpfnb doctor --fix` as root (or `make lab`): it installs and links the distribution's headers.",
            details=output.strip(),
        )
    return compile_error(output, compiler="BCC")
