"""What compilers and the verifier say about a cell, in the cell's own line numbers.

Every engine compiles the user's text with clang, and every loaded program
meets the kernel's verifier. Line numbers are made to agree with the cell:
each user line is preceded by a ``#line`` directive naming the pseudo-file
:data:`SOURCE_FILE` (:func:`number_lines`), so clang's diagnostics, the BTF
line info and therefore the verifier's log all speak in the cell's numbering,
whatever text an engine adds around it. This module turns their output into
:class:`CompileError` and :class:`LoadError` messages.
"""

from __future__ import annotations

import errno as errno_codes
import os
import re
import signal
from dataclasses import dataclass

from ..errors import BpfnbError, CompileError, LoadError, PrivilegeError, did_you_mean
from ..kernel.uapi import helper_names

__all__ = [
    "SOURCE_FILE",
    "Diagnostic",
    "cell_diagnostics",
    "compile_error",
    "compiler_crash",
    "crash_report",
    "is_crash",
    "load_error",
    "number_lines",
    "parse_diagnostics",
    "undeclared_function",
    "verifier_tail",
]

#: The file name the user's source is compiled under (a real file, or a ``#line`` pseudo-file).
SOURCE_FILE = "__bpfnb_source__"

# Register and stack state the verifier dumps after some complaints.
_STATE_DUMP = re.compile(r"^(?:(?:cur|old) state:|from \d+ to \d+:|(?:\d+: )?R\d+(?:_[a-z]+)?=)")
_VERIFIER_LOCATION = re.compile(rf";\s*(?P<text>.*?)\s*@ {SOURCE_FILE}:(?P<line>\d+)\s*$")


def number_lines(source: str, *, first_line: int = 1, rewritten: re.Pattern[str] | None = None) -> str:
    """Precede each line of ``source`` with a ``#line`` directive for ``first_line`` onwards.

    Lines continuing a macro (after a trailing backslash) get no directive,
    which would end the macro. Where a compiler inserts lines of its own at a
    construct (``rewritten``, e.g. BCC before a ``TRACEPOINT_PROBE(...)``), the
    rest of that line is moved to a line of its own with its directive, so it
    keeps its number.
    """
    out: list[str] = []
    continued = False
    for number, line in enumerate(source.splitlines(), start=first_line):
        directive = f'#line {number} "{SOURCE_FILE}"'
        if not continued:
            out.append(directive)
        found = rewritten.search(line) if rewritten is not None and not continued else None
        if found and line[found.end() :].strip():
            out += [line[: found.end()], directive, line[found.end() :]]
        else:
            out.append(line)
        continued = line.endswith("\\")
    return "\n".join(out) + "\n"


def cell_diagnostics(output: str) -> str:
    """clang's diagnostics about the user's own lines, numbered as the user numbers them."""
    rendered = []
    for diagnostic in parse_diagnostics(output):
        if diagnostic.file != SOURCE_FILE:
            continue
        rendered.append(f"line {diagnostic.line}:{diagnostic.column}: {diagnostic.severity}: {diagnostic.message}")
        rendered.extend(_excerpt(diagnostic))
    return "\n".join(rendered)


def _excerpt(diagnostic: Diagnostic) -> list[str]:
    """The source excerpt and caret under a diagnostic, without notes about other files."""
    lines = diagnostic.text.splitlines()
    start = next((i for i, line in enumerate(lines) if _LOCATED.match(line) or _UNLOCATED.match(line)), -1) + 1
    shown = []
    for line in lines[start:]:
        note = _LOCATED.match(line)
        if note and note["file"] != SOURCE_FILE:
            break
        shown.append(line)
    return shown


def compile_error(output: str, *, compiler: str = "clang") -> CompileError:
    """A :class:`CompileError` from a compiler's output: its first error and the cell line it names."""
    diagnostics = parse_diagnostics(output)
    errors = [d for d in diagnostics if d.is_error]
    details = cell_diagnostics(output) or output.strip()
    if not errors:
        return CompileError(f"{compiler} could not compile the program.", details=output.strip())
    first = errors[0]
    if first.file == SOURCE_FILE:
        where = f" (line {first.line})"
    elif first.cell_line is not None:
        where = f" (in {os.path.basename(first.file)}, included from line {first.cell_line})"
    else:
        where = f" (in {first.file})" if first.file else ""
    count = f"{len(errors)} errors; first: " if len(errors) > 1 else ""
    return CompileError(f"the C code does not compile: {count}{first.message}{where}", details=details, line=first.cell_line)


# clang before 16 warns (C89's implicit declaration); clang 16 and later refuse.
_UNDECLARED = re.compile(r"(?:implicit declaration of|call to undeclared) function '(\w+)'")


def undeclared_function(output: str) -> CompileError | None:
    """The error for a call of a function the cell never declared, from clang's ``output``; None if none.

    Where clang only warns, what follows (BCC's rewriter, libbpf's search for
    the function as an extern, the verifier) would speak of something else.
    A misspelled helper gets the nearest helper names.
    """
    for diagnostic in parse_diagnostics(output):
        called = _UNDECLARED.search(diagnostic.message)
        if called and diagnostic.file == SOURCE_FILE:
            problem = f"{called[1]} is neither a BPF helper nor a function of the cell (line {diagnostic.line})"
            return CompileError(
                did_you_mean(problem, called[1], helper_names(), show=str),
                hint="`%bpf helpers` lists the helpers and which program types may call them.",
                details=cell_diagnostics(output),
                line=diagnostic.line,
            )
    return None


def compiler_crash(output: str, how: str) -> CompileError:
    """A :class:`CompileError` for a compiler that died (``how``: ``SIGSEGV``, ``SIGABRT``...).

    The compiler's last words are kept, and the cell line it was working on
    when a diagnostic about the cell names one. (LLVM's own ``line N:`` is
    not used: through BCC's rewriting it counts lines BCC added.)
    """
    summary, last_words, _line = crash_report(output)
    errors = [d for d in parse_diagnostics(output) if d.is_error and d.cell_line is not None]
    line = errors[0].cell_line if errors else None
    summary = errors[0].message if errors else re.sub(r"^line \d+: ", "", summary)
    where = f" at line {line}" if line is not None else ""
    return CompileError(
        f"the compiler crashed ({how}){where}: {summary}",
        hint="This is a compiler bug set off by the code: rewriting the statement it names usually avoids it. "
        "The notebook's kernel is unharmed: the compiler ran in a separate process.",
        details=cell_diagnostics(output) or last_words,
        line=line,
    )


def verifier_tail(log: str, source: str, first_line: int) -> tuple[str, int | None, str]:
    """The verifier's last meaningful lines, its final complaint, and the user line it points at."""
    lines = [ln for ln in log.splitlines() if not ln.startswith("bpf: Failed to load program")]
    while lines and not lines[-1].strip():
        lines.pop()
    hint_at = next((i for i, ln in enumerate(lines) if ln.startswith("HINT:")), len(lines))
    body, hints = lines[:hint_at], lines[hint_at:]
    processed = next((i for i in range(len(body) - 1, -1, -1) if body[i].startswith("processed ")), len(body))
    # The complaint is the last line before "processed ..." that is not a dump of register state.
    complaint = next(
        (body[i] for i in range(processed - 1, -1, -1) if body[i].strip() and not _STATE_DUMP.match(body[i])), ""
    )
    user_lines = source.splitlines()
    cell_line = None
    shown = []
    for ln in body[max(0, processed - 12) : processed + 1]:
        match = _VERIFIER_LOCATION.search(ln)
        if match:
            number = int(match["line"])
            if number < first_line:
                continue
            cell_line = number
            text = user_lines[number - first_line].strip() if number - first_line < len(user_lines) else ""
            ln = f"; line {number}: {text}"
        shown.append(ln)
    tail = "\n".join(shown + [h for h in hints if h.strip()])
    return tail, cell_line if cell_line is not None else _line_in_source(complaint, source, first_line), complaint.strip()


def _line_in_source(complaint: str, source: str, first_line: int) -> int | None:
    """The cell line a complaint is about when the log names none: the helper it names, or the loop."""
    helper = re.search(r"\b(bpf_\w+)#\d+", complaint)
    if helper:
        pattern = re.compile(rf"\b{helper[1]}\s*\(")
    elif "infinite loop" in complaint or "back-edge" in complaint:
        pattern = re.compile(r"\b(?:for|while)\s*\(|\bdo\s*\{")
    else:
        return None
    lines = source.splitlines()
    return next((first_line + i for i, line in enumerate(lines) if pattern.search(line)), None)


def load_error(function: str, err: int, log: str, *, source: str, first_line: int, fallback: str = "") -> BpfnbError:
    """Why the kernel refused to load ``function``: privileges, a missing program type, or the verifier.

    ``err`` is the errno of the load, ``log`` the verifier's log and
    ``fallback`` what the loader said when neither explains it.
    """
    from ..kernel.environment import has_bpf_privileges

    if err == errno_codes.EPERM and not has_bpf_privileges():
        return PrivilegeError(
            "this process may not load BPF programs: it is not root and lacks CAP_BPF and CAP_PERFMON.",
            hint="Use the 'eBPF (bpfnb)' kernel that `make lab` installs, or run Python as root.",
        )
    tail, line, complaint = verifier_tail(log, source, first_line)
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
            hint=_verifier_hint(complaint, source),
            details=tail,
            errno=err,
            function=function,
            line=line,
        )
    reason = os.strerror(err) if err else fallback
    return LoadError(f"the kernel refused to load {function}: {reason}", errno=err, function=function)


def _verifier_hint(complaint: str, source: str) -> str:
    """What to do about a verifier complaint; the kernel's lockdown where it withholds a helper."""
    if "expected=map_ptr" in complaint and re.search(r"\bbpf_\w+\s*\([^;]*&\s*\w+", source):
        # BCC's maps are structs it rewrites at their method calls; "&name" is not the map.
        return (
            "BCC passes a map to a helper only through the map's own methods (counts.lookup(&key), "
            "sockets.sk_redirect_hash(skb, &key, 0), events.ringbuf_output(...)), not as &name; "
            "a libbpf cell (#include \"vmlinux.h\") takes &name."
        )
    if "bpf_probe_write_user" in complaint:
        from ..kernel.environment import lockdown

        mode = lockdown().mode
        if mode in ("integrity", "confidentiality"):
            return (
                f"Kernel lockdown ({mode}) withholds bpf_probe_write_user from every program on this machine: "
                "it cannot be used here."
            )
    return "Read the verifier's last lines above; rerun with `--debug bpf` for its whole log."


# -- clang's output, read ------------------------------------------------------------

_LOCATED = re.compile(
    r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>fatal error|error|warning|note|remark): (?P<message>.*)$"
)
# Diagnostics with no location: the driver's ("clang: error: ...") or a
# backend's ("fatal error: error in backend: ...").
# LLVM's BPF backend puts the location inside an unlocated error:
# "error: FILE:5:19: in function f i32 (%struct.x*): A call to built-in function 'abort' is not supported."
_BACKEND = re.compile(
    r"^(?:clang(?:-[\d.]+)?: )?(?P<severity>error|warning): (?P<file>[^\s:]+):(?P<line>\d+):(?P<column>\d+): "
    r"(?:in function (?P<function>\S+) [^:]*?\): )?(?P<message>.*)$"
)
_UNLOCATED = re.compile(r"^(?:clang(?:-[\d.]+)?: )?(?P<severity>fatal error|error|warning): (?P<message>.*)$")
_INCLUDED = re.compile(r"^(?:In file included from|\s+from) (?P<file>.+?):(?P<line>\d+):$")
_SUMMARY = re.compile(r"^\d+ (?:warnings?|errors?)(?: and \d+ (?:warnings?|errors?))? generated\.$")
_BACKTRACE_FRAME = re.compile(r"^\s*#\d+ 0x[0-9a-f]+ ")
_STACK_CONTEXT = re.compile(r"^\d+\.\t(?P<what>.*)$")
_CRASH_MARKERS = (
    "PLEASE submit a bug report",
    "frontend command failed due to signal",
    "error in backend",
)


@dataclass(frozen=True)
class Diagnostic:
    """One diagnostic from clang.

    Attributes
    ----------
    severity
        ``"error"``, ``"fatal error"``, ``"warning"`` or ``"remark"``.
    message
        clang's message, without location.
    file
        The file it points into; the cell's own name for the cell.
    line, column
        Where in ``file``; 0 when clang gave no location.
    cell_line
        The cell line this diagnostic belongs to: its own line when ``file``
        is the cell, else the cell line whose ``#include`` led to ``file``.
    text
        The whole block as clang printed it, with source excerpt, caret and notes.
    """

    severity: str
    message: str
    file: str
    line: int
    column: int
    cell_line: int | None
    text: str

    @property
    def is_error(self) -> bool:
        """True for errors and fatal errors."""
        return self.severity in ("error", "fatal error")


def parse_diagnostics(stderr: str, source_name: str = SOURCE_FILE) -> list[Diagnostic]:
    """Split clang's stderr into diagnostics.

    Parameters
    ----------
    stderr
        Everything clang wrote to stderr.
    source_name
        The file name the cell was compiled under.

    Returns
    -------
    list of Diagnostic
        In clang's order; ``note:`` blocks are folded into the diagnostic before them.
    """
    found: list[Diagnostic] = []
    block: list[str] = []
    head: dict[str, object] | None = None
    included_from: int | None = None
    include_lines: list[str] = []

    def flush() -> None:
        if head is not None:
            found.append(Diagnostic(text="\n".join(block).rstrip(), **head))  # type: ignore[arg-type]

    for raw in stderr.splitlines():
        if _SUMMARY.match(raw) or _BACKTRACE_FRAME.match(raw):
            continue
        included = _INCLUDED.match(raw)
        if included:
            if not include_lines:
                included_from = None
            include_lines.append(raw)
            if included["file"] == source_name:
                included_from = int(included["line"])
            continue
        located = _LOCATED.match(raw) or _BACKEND.match(raw)
        if located and located["severity"] == "note" and head is not None:
            block.append(raw)
            continue
        unlocated = None if located else _UNLOCATED.match(raw)
        if located or unlocated:
            flush()
            if located:
                in_cell = located["file"] == source_name
                line = int(located["line"])
                head = {
                    "severity": located["severity"],
                    "message": located["message"],
                    "file": located["file"],
                    "line": line,
                    "column": int(located["column"]),
                    "cell_line": line if in_cell else (included_from if include_lines else None),
                }
            else:
                assert unlocated is not None
                head = {
                    "severity": unlocated["severity"],
                    "message": unlocated["message"],
                    "file": "",
                    "line": 0,
                    "column": 0,
                    "cell_line": None,
                }
            block = [*include_lines, raw]
            include_lines = []
            continue
        if head is not None:
            block.append(raw)
    flush()
    return found


def is_crash(returncode: int, stderr: str) -> bool:
    """Whether clang died rather than reported errors.

    Parameters
    ----------
    returncode
        clang's exit status (negative: killed by that signal).
    stderr
        clang's stderr.

    Returns
    -------
    bool
    """
    return returncode < 0 or returncode > 1 or any(marker in stderr for marker in _CRASH_MARKERS)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def crash_report(stderr: str, source_name: str = SOURCE_FILE) -> tuple[str, str, int | None]:
    """clang's last words when it crashed.

    Parameters
    ----------
    stderr
        clang's stderr.
    source_name
        The file name the cell was compiled under.

    Returns
    -------
    tuple of (str, str, int or None)
        A one-line summary (the backend's fatal error, else the driver's last
        error), the stderr without the machine-code backtrace frames (useless
        to a user; clang's numbered "Stack dump" context is kept), and the cell
        line clang was working on when it names one.
    """
    kept = [line for line in stderr.splitlines() if not _BACKTRACE_FRAME.match(line)]
    summary = ""
    for line in kept:
        for marker in ("error in backend:", "LLVM ERROR:"):
            if marker in line:
                summary = summary or line.split(marker, 1)[1].strip()
    if not summary:
        driver = [match for match in map(_UNLOCATED.match, kept) if match]
        summary = driver[-1]["message"] if driver else "clang stopped without a message"
        status = re.search(r"exit code (\d+)", summary)
        # Exit codes over 128 are a signal: name it (132 is SIGILL, 139 SIGSEGV).
        if status and int(status.group(1)) > 128:
            summary += f" ({_signal_name(int(status.group(1)) - 128)})"
    cell_line = None
    # The BPF backend names the line from debug info: "line 12: Invalid usage ...".
    backend_line = re.match(r"line (\d+): ", summary)
    if backend_line:
        cell_line = int(backend_line.group(1))
    where = re.compile(rf"{re.escape(source_name)}:(\d+):\d+")
    for line in kept:
        context = _STACK_CONTEXT.match(line)
        if context and not context["what"].startswith("Program arguments"):
            located = where.search(context["what"])
            if located:
                cell_line = int(located.group(1))
    return summary, "\n".join(kept).strip(), cell_line
