"""``Program``: C source compiled, loaded into the kernel, attached, and released.

A Program is all-or-nothing: every function is loaded (so the verifier speaks
before anything is attached), then every hook is attached, and any failure
releases everything done so far. Its lifetime is explicit (``detach()``, a
``with`` block) and backed by ``weakref.finalize``, so a forgotten program is
still released when it is garbage or when Python exits.
"""

from __future__ import annotations

import contextlib
import html
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from . import _html
from ._bcc import function_names, table_names
from ._attach import Attachment, Probe, attach, program_type
from ._compile import cell_diagnostics, compile_source, load_function
from ._exceptions import AttachError, NoSuchMapError
from ._stats import program_info, stats_enabled

if TYPE_CHECKING:
    import bcc
    import pandas as pd

__all__ = ["Program", "Resource"]

#: Maps whose names start with this belong to bpfnb and are not listed.
INTERNAL_PREFIX = "_bpfnb"


class Resource(Protocol):
    """Something that lives only as long as its program: a stream, a recorder, a live plot."""

    @property
    def running(self) -> bool: ...

    def stop(self) -> None: ...


class _Holdings:
    """Everything a program holds in the kernel, released in reverse order of taking.

    Kept apart from :class:`Program` so that ``weakref.finalize`` can release it
    without keeping the Program alive.
    """

    def __init__(self, bpf: bcc.BPF) -> None:
        self.bpf = bpf
        self.attachments: list[Attachment] = []
        self.resources: list[Resource] = []

    def release(self) -> None:
        for resource in reversed(self.resources):
            with contextlib.suppress(Exception):
                resource.stop()
        for attachment in reversed(self.attachments):
            with contextlib.suppress(Exception):
                attachment.release()
        self.bpf.cleanup()


class Program:
    """A BPF program compiled from C with BCC, loaded and attached.

    Parameters
    ----------
    source : str
        BCC-flavoured C: ``BPF_HASH(...)``, ``TRACEPOINT_PROBE(...)``, helper calls.
    name : str, optional
        How displays and ``%bpf ls`` call it. Defaults to ``"program"``.
    cflags : sequence of str, optional
        Extra flags for clang, such as ``["-DMAX=10"]``.
    debug : int, optional
        BCC's debug flags (``bcc.DEBUG_BPF`` prints the verifier log).
    attach : bool, optional
        False loads the functions without attaching them. Default True.
    probes : sequence of Probe, optional
        Explicit attachments beyond what BCC's naming convention implies.
    first_line : int, optional
        The number of the source's first line in error messages (2 in a
        ``%%bpf`` cell, whose first line is the magic). Default 1.

    Examples
    --------
    >>> with Program('''
    ... BPF_HASH(counts, u32, u64);
    ... TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    ...     u32 pid = bpf_get_current_pid_tgid() >> 32;
    ...     counts.increment(pid);
    ...     return 0;
    ... }''') as prog:
    ...     time.sleep(1)
    ...     print(prog["counts"].df())
    """

    def __init__(
        self,
        source: str,
        *,
        name: str | None = None,
        cflags: Sequence[str] = (),
        debug: int = 0,
        attach: bool = True,
        probes: Sequence[Probe] = (),
        first_line: int = 1,
    ) -> None:
        from ._environment import preflight

        preflight(needs_tracefs=_needs_tracefs(source, probes))
        self.name = name or "program"
        self.source = source
        #: The number error messages give the source's first line.
        self.first_line = first_line
        self.bpf, self.log = compile_source(source, cflags=cflags, debug=debug, first_line=first_line, prelude=_prelude(source))
        #: clang's warnings about the source, numbered as its lines are.
        self.warnings = cell_diagnostics(self.log)
        self._holdings = _Holdings(self.bpf)
        self._finalizer = weakref.finalize(self, self._holdings.release)
        self._maps: dict[str, Any] = {}
        self._loaded: dict[str, list[str]] = {}
        try:
            self._start(probes, attach)
        except BaseException:
            self.detach()
            raise

    # -- lifecycle ---------------------------------------------------------

    def _start(self, probes: Sequence[Probe], attach_them: bool) -> None:
        requested = self._resolve(probes)
        for probe in requested:
            if probe.function not in self._loaded:
                self.log += load_function(
                    self.bpf,
                    probe.function,
                    program_type(probe.kind),
                    source=self.source,
                    first_line=self.first_line,
                )
            self._loaded.setdefault(probe.function, []).append(probe.kind)
        if attach_them:
            for probe in requested:
                self._holdings.attachments.append(attach(self.bpf, probe))

    def _resolve(self, probes: Sequence[Probe]) -> list[Probe]:
        """BCC-named functions first, then explicit probes with their functions filled in."""
        functions = self.functions
        implied = [p for p in map(Probe.from_function_name, functions) if p is not None]
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

    def detach(self) -> None:
        """Detach and unload everything; safe to call more than once."""
        self._finalizer()

    close = detach

    @property
    def closed(self) -> bool:
        """True once the program has been detached."""
        return not self._finalizer.alive

    def own(self, resource: Resource) -> None:
        """Stop ``resource`` when this program detaches (at once if it already has)."""
        if self.closed:
            resource.stop()
            return
        held = self._holdings.resources
        held[:] = [r for r in held if r.running]
        held.append(resource)

    @property
    def resources(self) -> list[Resource]:
        """Streams, recorders and live plots of this program that are still running."""
        return [r for r in self._holdings.resources if r.running]

    def __enter__(self) -> Program:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    # -- what the program holds -------------------------------------------

    @property
    def functions(self) -> list[str]:
        """Names of the C functions BCC compiled into programs."""
        return function_names(self.bpf.module)

    @property
    def attachments(self) -> list[Probe]:
        """The hooks this program's functions are attached to."""
        return [a.probe for a in self._holdings.attachments] if not self.closed else []

    @property
    def sockets(self) -> dict[str, int]:
        """Raw socket fds of socket filters by function: read packets that pass the filter from them."""
        return {a.probe.function: a.socket_fd for a in self._holdings.attachments if a.socket_fd is not None}

    @property
    def maps(self) -> Mapping[str, Any]:
        """The program's maps by name, each a view with ``.df()``."""
        return _Maps(self)

    def map_names(self) -> list[str]:
        return [n for n in table_names(self.bpf.module) if not n.startswith(INTERNAL_PREFIX)]

    def __getitem__(self, name: str) -> Any:
        return self.maps[name]

    def function_fd(self, function: str) -> int | None:
        fn = self.bpf.funcs.get(function.encode())
        return None if fn is None else int(fn.fd)

    # -- features of other modules --------------------------------------------

    def stream(self, name: str, **options: Any) -> Any:
        """Consume the ring or perf buffer ``name`` in the background; see :class:`bpfnb.Stream`."""
        from ._events import open_stream

        return open_stream(self, name, **options)

    def test_run(self, function: str, packet: bytes, **options: Any) -> Any:
        """Run a packet through ``function`` with BPF_PROG_TEST_RUN; see :func:`bpfnb.test_run`."""
        from ._testrun import test_run

        return test_run(self, function, packet, **options)

    # -- reporting -------------------------------------------------------------

    def stats(self) -> pd.DataFrame:
        """Per loaded function: program id, runs and run time (counted while stats are on)."""
        import pandas as pd

        rows = []
        for function, kinds in self._loaded.items():
            fd = None if self.closed else self.function_fd(function)
            if fd is None:
                continue
            info = program_info(fd)
            rows.append(
                {
                    "function": function,
                    "kind": ", ".join(kinds),
                    "prog_id": info.prog_id,
                    "run_count": info.run_count,
                    "run_time_ns": info.run_time_ns,
                    "avg_ns": info.average_ns,
                    "verified_insns": info.verified_insns,
                }
            )
        frame = pd.DataFrame(
            rows, columns=["function", "kind", "prog_id", "run_count", "run_time_ns", "avg_ns", "verified_insns"]
        )
        frame.attrs["stats_enabled"] = stats_enabled()
        return frame

    @property
    def state(self) -> str:
        if self.closed:
            return "detached"
        return "attached" if self._holdings.attachments else "loaded, not attached"

    def _map_rows(self) -> Iterator[tuple[str, str, str, str, object]]:
        from ._maps import entries_shown

        for name, view in self.maps.items():
            yield name, view.map_type, view.key_type, view.value_type, entries_shown(view)

    def __repr__(self) -> str:
        lines = [f"<bpfnb.Program {self.name!r}: {self.state}>"]
        if not self.closed:
            lines += [f"  {probe}" for probe in self.attachments]
            lines += [f"  map {n}: {t} {k} -> {v}, {e} entries" for n, t, k, v, e in self._map_rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self.closed:
            return _html.card(f"Program {self.name}: detached")
        parts = []
        if self.attachments:
            parts.append(
                _html.table(
                    ["hook", "target", "function"], ((p.kind, p.target, p.function) for p in self.attachments)
                )
            )
        maps = list(self._map_rows())
        if maps:
            parts.append(_html.table(["map", "type", "key", "value", "entries"], maps))
        parts.append(self._stats_html())
        if self.warnings:
            parts.append(f"<pre>{html.escape(self.warnings)}</pre>")
        return _html.card(f"Program {self.name}: {self.state}", *parts)

    def _stats_html(self) -> str:
        stats = self.stats()
        if not stats.attrs["stats_enabled"]:
            return _html.note(
                "Run counts and run times are off: `%bpf stats on` (or bpfnb.enable_stats()) turns them on."
            )
        rows = (
            (r.function, r.prog_id, r.run_count, f"{r.avg_ns:.0f}" if r.run_count else "-")
            for r in stats.itertuples()
        )
        return _html.table(["function", "prog id", "runs", "avg ns/run"], rows)


class _Maps(Mapping[str, Any]):
    """A program's maps by name; the views are made on first use and kept."""

    def __init__(self, program: Program) -> None:
        self._program = program

    def __getitem__(self, name: str) -> Any:
        program = self._program
        if name not in program._maps:
            if name not in program.map_names():
                known = ", ".join(program.map_names()) or "none"
                raise NoSuchMapError(f"program {program.name!r} has no map {name!r} (its maps: {known})")
            from ._maps import map_view

            program._maps[name] = map_view(program, name)
        return program._maps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._program.map_names())

    def __len__(self) -> int:
        return len(self._program.map_names())


def _needs_tracefs(source: str, probes: Iterable[Probe]) -> bool:
    tracing_kinds = {"kprobe", "kretprobe", "uprobe", "uretprobe", "tracepoint"}
    return "TRACEPOINT_PROBE" in source or "tracepoint__" in source or any(p.kind in tracing_kinds for p in probes)


def _prelude(source: str) -> str:
    """C text to put before ``source``: mmapable arrays, and ring-buffer loss counters where it uses ring buffers."""
    from ._maps import array_prelude

    if "ringbuf" not in source:
        return array_prelude(source)
    from ._events import PRELUDE

    return array_prelude(source) + PRELUDE
