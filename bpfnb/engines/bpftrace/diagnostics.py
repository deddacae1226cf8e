"""bpftrace's messages on stderr, placed in the user's cell and turned into bpfnb's errors.

bpftrace 0.17 reports a problem in the script as::

    stdin:1:53-54: ERROR: syntax error, unexpected }
    tracepoint:syscalls:sys_enter_getppid { @x = count( }
                                                        ~

followed by the source line and an underline; warnings look alike. A probe
that is not on the script's first line is placed by a range of lines instead,
without an echo, the probe on the last of them::

    stdin:1-3: ERROR: tracepoint not found: nope:nope

Problems
found while attaching carry no position::

    create_probe_event: open(/sys/kernel/debug/tracing/kprobe_events): No such file or directory
    ERROR: Error attaching probe: 'kprobe:do_nanosleep'

Some lines are noise that bpftrace prints and then carries on (it cannot raise
RLIMIT_MEMLOCK; it cannot read ``available_filter_functions`` under lockdown,
printed without a newline, so that the next message is glued to it). They
never become the error a user sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import AttachError, BpfnbError, CompileError, PrivilegeError
from .prepared import PreparedScript
from .script import PROVIDERS

__all__ = ["Diagnostic", "failure", "format_diagnostics", "parse_stderr", "without_noise"]

_POSITIONED = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+)(?::(?P<col>\d+)(?:-(?P<end>\d+))?|-(?P<last>\d+)): "
    r"(?P<level>ERROR|WARNING): (?P<message>.*)$"
)
_PLAIN = re.compile(r"^(?P<level>ERROR|WARNING|FATAL): (?P<message>.*)$")
_NOISE = re.compile(r"^(?:ERROR: Unknown error -?\d+: |WARNING: )couldn't set RLIMIT_MEMLOCK")
# Printed without a trailing newline: its strerror ends where the next message begins.
_GLUED_NOISE = re.compile(r"Error while reading traceable functions from \S+: .*?(?=(?:ERROR|WARNING): |$)")
_UNDERLINE = re.compile(r"^\s*~+\s*$")
_ATTACHING = re.compile(r"Error attaching probe: '(?P<probe>[^']+)'")
# What bpftrace 0.17 says, unplaced, about a probe it cannot attach or does not know.
_PROBE_TROUBLE = ("Error attaching probe", "No probes to attach", "Invalid probe type")
_NOT_ROOT = "only supports running as the root user"


@dataclass(frozen=True)
class Diagnostic:
    """One message of bpftrace, placed in the user's cell where it has a position.

    Attributes
    ----------
    level
        ``"error"``, ``"warning"`` or ``"note"`` (a plain line such as
        libbcc's ``create_probe_event: ...``).
    message
        bpftrace's own words, without the position.
    line, column, end_column
        Cell line and columns from 1 (``end_column`` exclusive, as bpftrace
        prints it); None where bpftrace gave none or the position is in the
        probe bpfnb added.
    script_line
        The line of the script bpftrace ran.
    """

    level: str
    message: str
    line: int | None = None
    column: int | None = None
    end_column: int | None = None
    script_line: int | None = None

    @property
    def where(self) -> str:
        """``line 2, column 53`` (or ``columns 1-20``), or ``""``."""
        if self.line is None:
            return ""
        if self.column is None:
            return f"line {self.line}"
        if self.end_column is not None and self.end_column - self.column > 1:
            return f"line {self.line}, columns {self.column}-{self.end_column - 1}"
        return f"line {self.line}, column {self.column}"


def without_noise(stderr: str) -> list[str]:
    """The lines of bpftrace's stderr that say something (the known noise left out)."""
    lines = []
    for raw in stderr.splitlines():
        line = _GLUED_NOISE.sub("", raw)
        if line.strip() and not _NOISE.match(line):
            lines.append(line)
    return lines


def _placed(message: str, level: str, offset: int, length: int, prepared: PreparedScript) -> Diagnostic:
    """A diagnostic about the source text at ``offset``."""
    script_line, column = prepared.position(offset)
    return Diagnostic(level, message, prepared.cell_line(script_line), column, column + length, script_line)


def _on_line(level: str, message: str, script_line: int, prepared: PreparedScript) -> Diagnostic:
    """A message about a probe on ``script_line``: the one it names, or the line's first."""
    probes = [p for p in prepared.probes if prepared.position(p.offset)[0] == script_line]
    named = [p for p in probes if p.spec.partition(":")[2] in message]
    if not named + probes:
        return Diagnostic(level, message, prepared.cell_line(script_line), script_line=script_line)
    probe = (named + probes)[0]
    return _placed(message, level, probe.offset, len(probe.spec), prepared)


def _unplaced(level: str, message: str, prepared: PreparedScript) -> Diagnostic:
    """An unpositioned message, placed at the probe it names where the script spells it."""
    named = _ATTACHING.search(message)
    probe = next((p for p in prepared.probes if named and p.spec == named["probe"]), None)
    if probe is None and "Invalid probe type" in message:
        # bpftrace 0.17 aborts on a probe type it does not know without naming it.
        probe = next((p for p in prepared.probes if p.provider is None), None)
        if probe is not None:
            written = probe.spec.partition(":")[0]
            message = f"unknown probe type {written!r}: bpftrace knows {', '.join(PROVIDERS)}"
    if probe is None:
        return Diagnostic(level, message)
    return _placed(message, "error", probe.offset, len(probe.spec), prepared)


def parse_stderr(stderr: str, prepared: PreparedScript) -> list[Diagnostic]:
    """bpftrace's stderr as diagnostics in the cell's lines, in bpftrace's order, noise left out."""
    script_lines = prepared.text.splitlines()
    out: list[Diagnostic] = []
    lines = without_noise(stderr)
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if (positioned := _POSITIONED.match(line)) and positioned["last"]:
            level = positioned["level"].lower()
            out.append(_on_line(level, positioned["message"], int(positioned["last"]), prepared))
        elif positioned:
            script_line, column, end = int(positioned["line"]), int(positioned["col"]), positioned["end"]
            # The echoed source line and its underline add nothing to a cell that shows its source.
            if i < len(lines) and 0 < script_line <= len(script_lines) and lines[i] == script_lines[script_line - 1]:
                i += 1
            if i < len(lines) and _UNDERLINE.match(lines[i]):
                i += 1
            cell_line = prepared.cell_line(script_line)
            placed = cell_line is not None
            out.append(
                Diagnostic(
                    positioned["level"].lower(),
                    positioned["message"],
                    cell_line,
                    column if placed else None,
                    int(end) if end and placed else None,
                    script_line,
                )
            )
        elif plain := _PLAIN.match(line):
            level = "error" if plain["level"] == "FATAL" else plain["level"].lower()
            out.append(_unplaced(level, plain["message"], prepared))
        else:
            out.append(_unplaced("note", line.strip(), prepared))
    return out


def format_diagnostics(diagnostics: list[Diagnostic], prepared: PreparedScript) -> str:
    """Diagnostics as text, each under its cell line with carets, in the cell's numbering."""
    source_lines = prepared.source.splitlines()
    out = []
    for d in diagnostics:
        prefix = f"{d.where}: " if d.where else ""
        out.append(f"{prefix}{d.level}: {d.message}" if d.level != "note" else d.message)
        if d.line is not None and d.script_line is not None and d.script_line <= len(source_lines):
            out.append(f"  {d.line:4d} | {source_lines[d.script_line - 1]}")
            if d.column is not None:
                width = max(1, (d.end_column or d.column + 1) - d.column)
                out.append(f"       | {' ' * (d.column - 1)}{'^' * width}")
    return "\n".join(out)


def failure(stderr: str, prepared: PreparedScript, returncode: int | None) -> BpfnbError:
    """The error bpftrace's stderr describes: the first error, at its cell line and column.

    A :class:`PrivilegeError` when bpftrace refuses to run without root; an
    :class:`AttachError` for a probe it cannot attach or does not know (an
    error placed on a probe of the script, or one of its unplaced attach
    messages); a :class:`CompileError` for everything else it rejects. The
    ``details`` hold every message, bpftrace's own words.
    """
    diagnostics = parse_stderr(stderr, prepared)
    details = format_diagnostics(diagnostics, prepared)
    errors = [d for d in diagnostics if d.level == "error"]
    first = next((d for d in errors if d.line is not None), errors[0] if errors else None)
    if first is None:
        notes = [d.message for d in diagnostics if d.level == "note"]
        first = Diagnostic("error", notes[-1] if notes else f"bpftrace exited with status {returncode}")
    where = f" ({first.where})" if first.where else ""
    if _NOT_ROOT in first.message:
        return PrivilegeError(f"bpftrace: {first.message}", details=details)
    if first.message.startswith(_PROBE_TROUBLE) or _on_a_probe(first, prepared):
        hint = (
            "None of the script's probes matched a function or event here: check their names (`bpftrace -l` lists them)."
            if first.message.startswith("No probes to attach")
            else "`%bpf probes` lists this kernel's tracepoints; `%bpf doctor` says which kinds of probe it allows."
        )
        return AttachError(
            f"bpftrace cannot attach: {first.message}{where}", hint=hint, details=details, line=first.line
        )
    return CompileError(
        f"the bpftrace script does not compile: {first.message}{where}", details=details, line=first.line
    )


def _on_a_probe(diagnostic: Diagnostic, prepared: PreparedScript) -> bool:
    """Whether a placed error points at one of the script's probes (not a syntax error there)."""
    if diagnostic.script_line is None or diagnostic.column is None or diagnostic.message.startswith("syntax error"):
        return False
    return any(prepared.position(p.offset) == (diagnostic.script_line, diagnostic.column) for p in prepared.probes)
