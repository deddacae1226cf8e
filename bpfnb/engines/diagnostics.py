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

from ..errors import BpfnbError, CompileError, LoadError, PrivilegeError

__all__ = [
    "SOURCE_FILE",
    "cell_diagnostics",
    "compile_error",
    "load_error",
    "number_lines",
    "verifier_tail",
]

#: The pseudo-file name that ``#line`` directives give the user's source.
SOURCE_FILE = "__bpfnb_source__"

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\s:]+):(?P<line>\d+):(?P<col>\d+): (?P<kind>fatal error|error|warning|note): (?P<msg>.*)$"
)
_VERIFIER_LOCATION = re.compile(rf";\s*(?P<text>.*?)\s*@ {SOURCE_FILE}:(?P<line>\d+)\s*$")


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


def compile_error(output: str, *, compiler: str = "clang") -> CompileError:
    """A :class:`CompileError` from a compiler's output: its first error and the cell line it names."""
    details = cell_diagnostics(output)
    errors = [h for h, _ in _split_diagnostics(output) if h is not None and h["kind"] in ("error", "fatal error")]
    if not errors:
        return CompileError(f"{compiler} could not compile the program.", details=output.strip())
    first = errors[0]
    where = f" (line {first['line']})" if first["file"] == SOURCE_FILE else f" (in {first['file']})"
    count = f"{len(errors)} errors; first: " if len(errors) > 1 else ""
    line = int(first["line"]) if first["file"] == SOURCE_FILE else None
    return CompileError(
        f"the C code does not compile: {count}{first['msg']}{where}", details=details or output.strip(), line=line
    )


def verifier_tail(log: str, source: str, first_line: int) -> tuple[str, int | None, str]:
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
            if number < first_line:
                continue
            cell_line = number
            text = user_lines[number - first_line].strip() if number - first_line < len(user_lines) else ""
            ln = f"; line {number}: {text}"
        shown.append(ln)
    tail = "\n".join(shown + [h for h in hints if h.strip()])
    return tail, cell_line, complaint.strip()


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
            hint="Read the verifier's last lines above; rerun with `--debug bpf` for its whole log.",
            details=tail,
            errno=err,
            function=function,
            line=line,
        )
    reason = os.strerror(err) if err else fallback
    return LoadError(f"the kernel refused to load {function}: {reason}", errno=err, function=function)
