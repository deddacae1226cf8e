"""Errors bpfnb raises for problems a user can fix.

    BpfnbError
    ├── ArgumentError     an argument bpfnb cannot use (also a ValueError)
    ├── NoSuchMapError    a program has no map of that name (also a KeyError)
    ├── CompileError      clang (or bpftrace) rejected the code (diagnostics in cell lines)
    ├── LoadError         the kernel refused a program (verifier log, errno)
    ├── AttachError       a loaded program could not be attached to its hook
    ├── PrivilegeError    the process may not use bpf() or perf events
    ├── SetupError        a precondition is missing: headers, tracefs, BCC, bpftrace
    ├── LayoutError       the headers place a kernel field the cell reads elsewhere than the kernel does
    ├── DecodeError       bytes from the kernel do not fit the declared type
    ├── ClusterError      a cluster cannot be reached, or a cell loaded on too few of its hosts
    ├── UnsupportedMapError  a map type bpfnb (or BCC) cannot read
    └── CaptureError      a capture that cannot be written or read

    KeyboardInterrupt
    └── Interrupted       Ctrl-C stopped a cell; nothing it had started stays in the kernel

Every error carries a one-line ``hint`` that says what to do. In IPython the
error is shown without a traceback (``_render_traceback_``): the traceback of
bpfnb's internals says nothing to someone whose C code has a typo. Where a
name was misspelled (a map, a tracepoint, a helper), :func:`did_you_mean` puts
the nearest real names into the message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Callable

__all__ = [
    "ArgumentError",
    "AttachError",
    "BpfnbError",
    "CaptureError",
    "ClusterError",
    "CompileError",
    "DecodeError",
    "Interrupted",
    "LayoutError",
    "LoadError",
    "NoSuchMapError",
    "PrivilegeError",
    "SetupError",
    "UnsupportedMapError",
    "did_you_mean",
]

def did_you_mean(message: str, name: str, candidates: Iterable[str], *, show: Callable[[str], str] = repr) -> str:
    """``message``, followed by ``: did you mean 'counts'?`` when some of the candidates are near ``name``.

    ``show`` writes each candidate as the message wants it (quoted by default).
    """
    scored = []
    for candidate in dict.fromkeys(candidates):
        matcher = difflib.SequenceMatcher(None, name, candidate)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and matcher.ratio() >= 0.6:
            scored.append((matcher.ratio(), candidate))
    best = max((score for score, _ in scored), default=0.0)
    # Only the names about as near as the nearest: one typo rarely leaves two real answers.
    near = [candidate for score, candidate in sorted(scored, key=lambda s: (-s[0], s[1])) if score >= best - 0.05][:3]
    return f"{message}: did you mean {' or '.join(map(show, near))}?" if near else message


_DOCTOR_HINT = "Run `%bpf doctor` (or `bpfnb doctor` in a shell) to check this machine."


class BpfnbError(Exception):
    """Root of every error bpfnb raises on purpose."""

    #: IPython shows ``_render_traceback_`` instead of a traceback; set this to
    #: False (``%config BpfnbMagics.short_errors = False``) to see the traceback.
    short = True

    def __init__(self, message: str, *, hint: str = "", details: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details
        #: The cell (or source) line the error is about, where there is one.
        self.line = line

    def __str__(self) -> str:
        parts = [self.message]
        if self.details:
            parts.append(self.details)
        if self.hint:
            parts.append(self.hint)
        return "\n".join(parts)

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        # IPython shows the ordinary traceback when this attribute is missing.
        if not type(self).short:
            raise AttributeError("_render_traceback_")
        return self._short_traceback

    def _short_traceback(self) -> list[str]:
        red, bold, reset = "\x1b[31m", "\x1b[1m", "\x1b[0m"
        lines = [f"{red}{bold}{type(self).__name__}{reset}: {self.message}"]
        if self.details:
            lines.extend(self.details.rstrip("\n").splitlines())
        if self.hint:
            lines.append(f"{bold}hint{reset}: {self.hint}")
        return lines


class ArgumentError(BpfnbError, ValueError):
    """An argument bpfnb cannot use; the message names what it accepts."""


class NoSuchMapError(BpfnbError, KeyError):
    """A program has no map of the name asked for; the message lists its maps."""


class CompileError(BpfnbError):
    """The C code did not compile; ``details`` holds clang's diagnostics."""


class LoadError(BpfnbError):
    """The kernel refused to load a program; ``details`` holds the verifier's words."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        details: str = "",
        errno: int | None = None,
        function: str | None = None,
        line: int | None = None,
        log: str = "",
    ) -> None:
        super().__init__(message, hint=hint, details=details, line=line)
        self.errno = errno
        self.function = function
        #: The verifier's whole log (``details`` holds its end).
        self.log = log


class AttachError(BpfnbError):
    """A program loaded but could not be attached to its hook."""

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        details: str = "",
        hook: tuple[str, str] | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message, hint=hint, details=details, line=line)
        #: ``(kind, target)`` of the hook that refused, e.g. ``("xdp", "veth0")``.
        self.hook = hook


class PrivilegeError(BpfnbError):
    """The process lacks the privileges bpf() and perf events need."""

    def __init__(self, message: str, *, hint: str = "", details: str = "") -> None:
        super().__init__(message, hint=hint or _DOCTOR_HINT, details=details)


class SetupError(BpfnbError):
    """Something the machine must provide is missing (headers, tracefs, BCC)."""

    def __init__(self, message: str, *, hint: str = "", details: str = "") -> None:
        super().__init__(message, hint=hint or _DOCTOR_HINT, details=details)


class LayoutError(BpfnbError):
    """A BCC cell reads a kernel struct field the installed headers place elsewhere than the running kernel."""


class DecodeError(BpfnbError):
    """Bytes read from the kernel do not match the type they were declared with."""


class ClusterError(BpfnbError):
    """A cluster cannot be reached or has no engines, or a cell loaded on too few of its hosts (``details``: which, why)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped bpfnb in the middle of something; what it had started was released.

    A ``KeyboardInterrupt``, so that Ctrl-C still stops a script; IPython
    shows it as one line.
    """

    def __init__(self, doing: str) -> None:
        super().__init__(f"interrupted while {doing}: nothing was left loaded or attached")
        self.doing = doing

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m\x1b[1mInterrupted\x1b[0m: {self.args[0]}"]


class UnsupportedMapError(BpfnbError):
    """A map whose type bpfnb cannot read from Python."""


class CaptureError(BpfnbError):
    """A capture could not be written, or what was read is not a readable capture."""
