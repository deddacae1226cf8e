"""A BCC cell compiled, loaded and attached all-or-nothing: the BCC engine's :class:`LoadedProgram`.

Every function a hook needs is loaded first, so the verifier speaks before
anything is attached; then every hook is attached, and any failure releases
everything taken so far (BCC's own auto-attach would leave the first probes
attached when a later one fails).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Sequence

from ...errors import AttachError, Interrupted
from ...kernel.constants import PROG_TYPES
from ...kernel.libbpf import num_possible_cpus
from ..base import LoadOptions, MapSpec
from ..diagnostics import cell_diagnostics
from ..hooks import Probe
from ..interrupts import deferred_interrupts
from ..links import Attachment
from .attach import attach, implied_probe
from .compiler import compile_source, load_function
from .layouts import check_layouts
from .module import describe_map, event_struct, function_names, named_type, table_names
from .prelude import LOST_MAP, prelude

__all__ = ["INTERNAL_PREFIX", "BccProgram"]

#: Maps whose names start with this belong to bpfnb and are not listed.
INTERNAL_PREFIX = "_bpfnb"

_TRACING_KINDS = {"kprobe", "kretprobe", "uprobe", "uretprobe", "tracepoint"}


class BccProgram:
    """The BCC engine's loaded program; see :class:`bpfnb.engines.base.LoadedProgram`."""

    engine = "bcc"

    def __init__(self, source: str, options: LoadOptions) -> None:
        from ...kernel.environment import preflight

        preflight(needs_tracefs=_needs_tracefs(source, options.probes))
        self.source = source
        self.first_line = options.first_line
        #: BCC's module (``bcc.BPF``), for what bpfnb does not wrap.
        self.bpf, self.log = compile_source(
            source, cflags=options.cflags, debug=options.debug, first_line=options.first_line, prelude=prelude(source)
        )
        self.warnings = cell_diagnostics(self.log)
        self._attachments: list[Attachment] = []
        if not options.trust_headers:
            try:
                check_layouts(source, first_line=options.first_line, cflags=options.cflags)
            except BaseException:
                self.bpf.cleanup()
                raise
        self._loaded: dict[str, list[str]] = {}
        self._released = False
        try:
            with deferred_interrupts() as interrupted:
                self._start(options.probes, options.attach)
        except BaseException:
            self.release()
            raise
        if interrupted:
            self.release()
            raise Interrupted("loading and attaching")

    def _start(self, probes: Sequence[Probe], attach_them: bool) -> None:
        requested = self._resolve(probes)
        for probe in requested:
            function = probe.function_name
            if function not in self._loaded:
                self.log += load_function(
                    self.bpf,
                    function,
                    probe.program_type,
                    attach_type=probe.attach_type,
                    source=self.source,
                    first_line=self.first_line,
                )
            self._loaded.setdefault(function, []).append(probe.kind)
        if attach_them:
            for probe in requested:
                try:
                    self._attachments.append(attach(self.bpf, probe))
                except AttachError as exc:
                    exc.line = exc.line or _defined_at(self.source, probe.function_name, self.first_line)
                    raise

    def _resolve(self, probes: Sequence[Probe]) -> list[Probe]:
        """BCC-named functions first, then explicit probes with their functions filled in."""
        functions = self.functions
        implied = [p for p in map(implied_probe, functions) if p is not None]
        claimed = {p.function for p in implied} | {p.function for p in probes if p.function}
        unclaimed = [f for f in functions if f not in claimed]
        resolved = []
        for probe in probes:
            if probe.function is None:
                if len(unclaimed) != 1:
                    choices = ", ".join(unclaimed) or "none left"
                    raise AttachError(
                        f"which function should attach to {probe.kind} {probe.target}? "
                        f"Write {probe.target}=FUNCTION (candidates: {choices})."
                    )
                probe = probe.with_function(unclaimed[0])
            elif probe.function not in functions:
                raise AttachError(
                    f"the program has no function {probe.function!r} to attach to {probe.kind} {probe.target}.",
                    hint=f"Its functions are: {', '.join(functions) or 'none'}.",
                )
            resolved.append(probe)
        return implied + resolved

    # -- what it holds ------------------------------------------------------------

    @property
    def functions(self) -> list[str]:
        return function_names(self.bpf.module)

    @property
    def attachments(self) -> list[Probe]:
        return [a.probe for a in self._attachments]

    @property
    def sockets(self) -> dict[str, int]:
        return {a.probe.function_name: a.socket_fd for a in self._attachments if a.socket_fd is not None}

    def loaded_functions(self) -> dict[str, list[str]]:
        return {function: list(kinds) for function, kinds in self._loaded.items()}

    def map_names(self) -> list[str]:
        return [n for n in table_names(self.bpf.module) if not n.startswith(INTERNAL_PREFIX)]

    def map_spec(self, name: str) -> MapSpec:
        if name not in self.map_names():
            raise KeyError(name)
        return describe_map(self.bpf, name, source=self.source)

    def function_fd(self, function: str) -> int | None:
        fn = self.bpf.funcs.get(function.encode())
        return None if fn is None else int(fn.fd)

    def program_type(self, function: str) -> str | None:
        return None  # BCC loads a function as whatever type its hook needs

    def load_function(self, function: str, prog_type: str) -> int:
        fd = self.function_fd(function)
        if fd is None:
            self.log += load_function(
                self.bpf, function, PROG_TYPES[prog_type], source=self.source, first_line=self.first_line
            )
            fd = self.function_fd(function)
        assert fd is not None, "BCC keeps every function it loaded"
        return fd

    def event_type(self, buffer: str, type_name: str | None = None) -> type:
        if type_name is not None:
            return named_type(self.source, type_name)
        return event_struct(self.bpf, buffer, source=self.source)

    def loss_counter(self) -> tuple[int, int] | None:
        if LOST_MAP not in table_names(self.bpf.module):
            return None  # no ring buffer, or a program built without bpfnb's prelude
        return self.bpf.get_table(LOST_MAP.encode()).map_fd, num_possible_cpus()

    def text_output(self) -> None:
        return None  # BCC programs print through buffers, read as streams by name

    # -- lifecycle ------------------------------------------------------------------

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        for attachment in reversed(self._attachments):
            with contextlib.suppress(Exception):
                attachment.release()
        self._attachments.clear()
        self.bpf.cleanup()


def _defined_at(source: str, function: str, first_line: int) -> int | None:
    """The cell line where ``function`` is defined (BCC's probe macros name it by their arguments)."""
    macro = re.match(r"(tracepoint|raw_tracepoint)__(\w+?)(?:__(\w+))?$", function)
    if macro and macro[1] == "tracepoint":
        pattern = rf"\bTRACEPOINT_PROBE\s*\(\s*{macro[2]}\s*,\s*{macro[3]}\s*\)"
    elif macro:
        pattern = rf"\bRAW_TRACEPOINT_PROBE\s*\(\s*{macro[2]}\s*\)"
    else:
        pattern = rf"\b{re.escape(function)}\s*\("
    found = re.compile(pattern)
    return next((first_line + i for i, line in enumerate(source.splitlines()) if found.search(line)), None)


def _needs_tracefs(source: str, probes: Iterable[Probe]) -> bool:
    return (
        "TRACEPOINT_PROBE" in source or "tracepoint__" in source or any(p.kind in _TRACING_KINDS for p in probes)
    )
