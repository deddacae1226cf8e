"""``Program``: a cell's C source compiled, loaded into the kernel, attached, and released.

A Program is all-or-nothing: its engine loads every function (so the verifier
speaks before anything is attached), then attaches every hook, and any
failure releases everything done so far. Its lifetime is explicit
(``detach()``, a ``with`` block) and backed by ``weakref.finalize``, so a
forgotten program is still released when it is garbage or when Python exits.
The engine (:mod:`bpfnb.engines`) stays behind this class: maps, streams and
packet runs get fds and typed layouts from it, never the engine itself.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import html
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .display import html as _html
from .engines import load
from .engines.base import LoadedProgram, LoadOptions, MapSpec, Resource
from .engines.hooks import Probe
from .errors import ArgumentError, BpfnbError, NoSuchMapError, did_you_mean
from .kernel.stats import program_info, stats_enabled

if TYPE_CHECKING:
    import bcc
    import pandas as pd
    from typing_extensions import Unpack

    from .maps.registry import MapView
    from .packets.testrun import TestRunResult
    from .streams.stream import Stream, StreamOptions
    from .streams.text import TextStream

__all__ = ["Program", "set_remote_loader"]

#: Loads a program on a cluster's hosts (``Program(source, on=...)``): set by
#: :mod:`bpfnb.remote` when a cluster is connected, so that this layer needs
#: no knowledge of clusters.
_remote_loader: Callable[..., Any] | None = None


def set_remote_loader(loader: Callable[..., Any] | None) -> None:
    """Make ``Program(source, on=...)`` call ``loader(source, on=..., strict=..., **options)``."""
    global _remote_loader
    _remote_loader = loader


class _Holdings:
    """The engine's program and the resources using it, released in reverse order of taking.

    Kept apart from :class:`Program` so that ``weakref.finalize`` can release it
    without keeping the Program alive.
    """

    def __init__(self, loaded: LoadedProgram) -> None:
        self.loaded = loaded
        self.resources: list[Resource] = []
        self.releasing = self.released = False

    def release(self) -> None:
        self.releasing = True
        # The maps are still open while the resources stop: a recording takes
        # its last snapshots then.
        for resource in reversed(self.resources):
            with contextlib.suppress(Exception):
                resource.stop()
        self.released = True
        self.loaded.release()


class Program:
    """A BPF program compiled from C (or a bpftrace script), loaded and attached.

    Parameters
    ----------
    source : str
        BCC-flavoured C: ``BPF_HASH(...)``, ``TRACEPOINT_PROBE(...)``, helper calls;
        libbpf C; or a bpftrace script (with ``engine="bpftrace"``).
    name : str, optional
        How displays and ``%bpf ls`` call it. Defaults to ``"program"``.
    engine : str, optional
        ``"bcc"``, ``"libbpf"`` or ``"bpftrace"``; by default the engine the C
        source is written for (libbpf for cells that include ``vmlinux.h`` or use
        ``SEC()``). bpftrace runs as a child process that dies with this one; its
        maps are read from what it prints (``prog["@name"].df()``) and its
        ``printf`` output is ``prog.stream()``.
    cflags : sequence of str, optional
        Extra flags for clang, such as ``["-DMAX=10"]``.
    debug : int, optional
        BCC's debug flags (``bcc.DEBUG_BPF`` prints the verifier log).
    attach : bool, optional
        False loads the functions without attaching them. Default True.
    probes : sequence of Probe, optional
        Explicit attachments beyond what the engine's naming convention implies.
    first_line : int, optional
        The number of the source's first line in error messages (2 in a
        ``%%bpf`` cell, whose first line is the magic). Default 1.
    trust_headers : bool, optional
        Load a BCC cell even when it reads kernel struct fields that the
        installed headers place elsewhere than the running kernel (it would
        read wrong values). Default False: such a cell is refused.
    interval_ms : int, optional
        bpftrace: milliseconds between the prints of its maps that keep
        ``df()`` current (0: the maps show only when the script ends). Default 1000.
    env : mapping of str to str, optional
        bpftrace: settings by environment variable, such as
        ``{"BPFTRACE_MAP_KEYS_MAX": "1000000"}`` (it keeps 4096 keys a map by default).
    on : str or sequence of str, optional
        Load on the hosts of the connected cluster instead (``"all"``,
        ``"web1,db1"``, or a list; connect first with ``bpfnb.cluster()``):
        the result is a :class:`bpfnb.ClusterProgram`.
    strict : bool, optional
        With ``on``: if the cell fails on any host, detach it everywhere and
        raise. Default False: it runs where it loaded.

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

    def __new__(cls, source: str, *, on: str | Sequence[str] | None = None, strict: bool = False, **options: Any) -> Any:
        if on is None:
            return super().__new__(cls)
        if _remote_loader is None:
            raise ArgumentError(
                "Program(on=...) loads on a cluster's hosts, and no cluster is connected",
                hint="connect one first: bpfnb.cluster(profile=...) or %bpf cluster connect",
            )
        return _remote_loader(source, on=on, strict=strict, **options)

    def __init__(
        self,
        source: str,
        *,
        on: None = None,
        strict: bool = False,
        name: str | None = None,
        engine: str | None = None,
        cflags: Sequence[str] = (),
        debug: int = 0,
        attach: bool = True,
        probes: Sequence[Probe] = (),
        first_line: int = 1,
        trust_headers: bool = False,
        interval_ms: int = 1000,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name or "program"
        options = _load_options(
            source, name=self.name, cflags=cflags, debug=debug, attach=attach, probes=probes, first_line=first_line
        )
        options = dataclasses.replace(
            options, trust_headers=bool(trust_headers), interval_ms=interval_ms, env=_environment(env)
        )
        self.source = source
        #: How the program was built, whatever the engine (a recording keeps them with the source).
        self.options = options
        #: The number error messages give the source's first line.
        self.first_line = first_line
        loaded = load(source, options, engine=engine)
        self._holdings = _Holdings(loaded)
        self._finalizer = weakref.finalize(self, self._holdings.release)
        self._maps: dict[str, MapView] = {}
        self._watchers: list[Callable[[Resource], None]] = []
        self._attach_requested = options.attach

    @property
    def _loaded(self) -> LoadedProgram:
        return self._holdings.loaded

    # -- lifecycle ---------------------------------------------------------

    def detach(self) -> None:
        """Detach and unload everything; safe to call more than once."""
        self._finalizer()

    close = detach

    @property
    def closed(self) -> bool:
        """True once the program has been detached (its resources stopped, its maps closed)."""
        return self._holdings.released

    def own(self, resource: Resource) -> None:
        """Stop ``resource`` when this program detaches (at once if it is detaching or has)."""
        if self._holdings.releasing:
            resource.stop()
            return
        held = self._holdings.resources
        held[:] = [r for r in held if r.running]
        held.append(resource)
        for watcher in list(self._watchers):
            watcher(resource)

    def watch(self, watcher: Callable[[Resource], None]) -> None:
        """Call ``watcher(resource)`` for every resource the program takes from now on.

        A recording follows the streams and histories opened while it runs
        this way; ``watcher`` runs in the thread that opens them, before they
        deliver anything.
        """
        self._watchers.append(watcher)

    def unwatch(self, watcher: Callable[[Resource], None]) -> None:
        """Stop calling ``watcher``; nothing happens if it was not watching."""
        if watcher in self._watchers:
            self._watchers.remove(watcher)

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
    def engine(self) -> str:
        """The engine that built the program: ``bcc``, ``libbpf`` or ``bpftrace``."""
        return self._loaded.engine

    @property
    def bpf(self) -> bcc.BPF:
        """BCC's own module object, for what bpfnb does not wrap (BCC programs only)."""
        bpf = getattr(self._loaded, "bpf", None)
        if bpf is None:
            raise ArgumentError(f"program {self.name!r} was built by {self.engine}, not BCC: it has no BCC module")
        return bpf

    @property
    def log(self) -> str:
        """What the compiler and loader printed (warnings, debug output)."""
        return self._loaded.log

    @property
    def warnings(self) -> str:
        """The compiler's warnings about the source, numbered as its lines are."""
        return self._loaded.warnings

    @property
    def functions(self) -> list[str]:
        """Names of the C functions compiled into programs."""
        return self._loaded.functions

    @property
    def attachments(self) -> list[Probe]:
        """The hooks this program's functions are attached to."""
        return [] if self.closed else self._loaded.attachments

    @property
    def sockets(self) -> dict[str, int]:
        """Raw socket fds of socket filters by function: read packets that pass the filter from them."""
        return {} if self.closed else self._loaded.sockets

    @property
    def maps(self) -> Mapping[str, MapView]:
        """The program's maps by name, each a view with ``.df()``."""
        return _Maps(self)

    def map_names(self) -> list[str]:
        """The names of the program's maps, in declaration order."""
        return self._loaded.map_names()

    def __getitem__(self, name: str) -> MapView:
        return self.maps[name]

    def _ipython_key_completions_(self) -> list[str]:
        # What IPython (and so Jupyter's Tab) offers inside prog["...
        return self.map_names()

    def function_fd(self, function: str) -> int | None:
        """The fd of a loaded function (None if it is not loaded, or the program is detached)."""
        return None if self.closed else self._loaded.function_fd(function)

    def program_type(self, function: str) -> str | None:
        """The program type ``function`` is loaded as, where the cell fixes it (a libbpf ``SEC``)."""
        return None if self.closed else self._loaded.program_type(function)

    def load_function(self, function: str, prog_type: str) -> int:
        """Load ``function`` as ``prog_type`` if it is not loaded yet; return its fd."""
        self._alive("run a function of")
        return self._loaded.load_function(function, prog_type)

    def _alive(self, doing: str) -> None:
        if self.closed:
            raise BpfnbError(f"cannot {doing} {self.name!r}: the program is detached", hint="run its cell again")

    # -- features of other layers --------------------------------------------

    def stream(
        self,
        name: str | None = None,
        *,
        type: str | None = None,
        event_type: builtins.type | None = None,
        **options: Unpack[StreamOptions],
    ) -> Stream | TextStream:
        """Consume the ring or perf buffer ``name`` in the background; see :class:`bpfnb.Stream`.

        ``type="struct event"`` names the C type of the events where the engine
        cannot tell it (``event_type=`` takes a ctypes class instead); the other
        options are those of :func:`bpfnb.streams.stream.open_stream`.

        Without a name: the lines the program prints (a bpftrace script's
        ``printf`` output, as a :class:`~bpfnb.streams.text.TextStream` with
        ``time``, ``text`` and ``key=value`` columns), or else its only buffer.
        """
        from .streams.stream import open_stream, require_buffer

        self._alive("stream a buffer of")
        if name is None:
            text = self._loaded.text_output()
            if text is None:
                name = self._only_buffer()
            elif type is not None or event_type is not None or options:
                raise ArgumentError("the lines a program prints take no stream options")
            else:
                from .streams.text import TextStream

                return TextStream(self, text)
        try:
            spec = self._loaded.map_spec(name)
        except KeyError:
            raise self._no_map(name) from None
        if not isinstance(spec, MapSpec):
            raise ArgumentError(
                f"{name!r} is a map {self.engine} reports, not a ring or perf buffer",
                hint="read it with prog[name].df(); what the program prints is prog.stream()",
            )
        require_buffer(spec)
        event_type = event_type or self._loaded.event_type(name, type)
        loss_counter = self._loaded.loss_counter() if spec.map_type == "ringbuf" else None
        return open_stream(self, spec, event_type=event_type, loss_counter=loss_counter, **options)

    @property
    def prints(self) -> bool:
        """Whether the program prints lines of text (bpftrace's ``printf``), which ``prog.stream()`` reads."""
        return not self.closed and self._loaded.text_output() is not None

    def _only_buffer(self) -> str:
        """The name of the program's one ring or perf buffer; an :class:`ArgumentError` unless there is exactly one."""
        from .streams.stream import only_buffer

        specs = {name: self._loaded.map_spec(name) for name in self.map_names()}
        return only_buffer(self.name, {name: spec.map_type for name, spec in specs.items() if isinstance(spec, MapSpec)})

    def test_run(self, function: str, packet: bytes, **options: Any) -> TestRunResult:
        """Run a packet through ``function`` with BPF_PROG_TEST_RUN; see :func:`bpfnb.test_run`."""
        from .packets.testrun import test_run

        return test_run(self, function, packet, **options)

    # -- reporting -------------------------------------------------------------

    def stats(self) -> pd.DataFrame:
        """Per loaded function: program id, runs and run time (counted while stats are on)."""
        import pandas as pd

        rows = []
        for function, kinds in ({} if self.closed else self._loaded.loaded_functions()).items():
            fd = self.function_fd(function)
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
    def unattached(self) -> list[str]:
        """Functions that were loaded while others attached, or compiled, but attach to no hook."""
        if self.closed or not self._attach_requested:
            return []
        attached = {p.function for p in self._loaded.attachments}
        return [f for f in self.functions if f not in attached]

    def _unattached_note(self) -> str:
        names = ", ".join(self.unattached)
        return (
            f"{names} attach{'es' if len(self.unattached) == 1 else ''} to nothing: name a function after its hook "
            "(TRACEPOINT_PROBE(category, event), tracepoint__category__event; SEC(\"tracepoint/...\") in a libbpf "
            "cell) or attach it with an option such as --tracepoint category:event=function, --cgroup PATH=function "
            "or --sk-msg MAP=function"
        )

    @property
    def state(self) -> str:
        """``attached``, ``loaded, not attached`` or ``detached``."""
        if self.closed:
            return "detached"
        return "attached" if self._loaded.attachments else "loaded, not attached"

    def _no_map(self, name: str) -> NoSuchMapError:
        known = ", ".join(self.map_names()) or "none"
        problem = f"program {self.name!r} has no map {name!r}"
        return NoSuchMapError(did_you_mean(problem, name, self.map_names()), hint=f"Its maps: {known}.")

    def _map_rows(self) -> Iterator[tuple[str, str, str, str, object]]:
        from .maps.view import entries_shown

        for name, view in self.maps.items():
            yield name, view.map_type, view.key_type, view.value_type, entries_shown(view)

    def __repr__(self) -> str:
        lines = [f"<bpfnb.Program {self.name!r}: {self.state}>"]
        if not self.closed:
            lines += [f"  {probe}" for probe in self.attachments]
            lines += [f"  map {n}: {t} {k} -> {v}, {e} entries" for n, t, k, v, e in self._map_rows()]
            if self.unattached:
                lines.append(f"  {self._unattached_note()}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self.closed:
            return _html.card(f"Program {self.name}: detached")
        parts: list[str] = []
        if self.attachments:
            parts.append(
                _html.table(
                    ["hook", "target", "function"], ((p.kind, p.target, p.function) for p in self.attachments)
                )
            )
        maps = list(self._map_rows())
        if maps:
            parts.append(_html.table(["map", "type", "key", "value", "entries"], maps))
        if self.unattached:
            parts.append(_html.note(self._unattached_note()))
        parts.append(self._stats_html())
        if self.warnings:
            parts.append(f"<pre>{html.escape(self.warnings)}</pre>")
        return _html.card(f"Program {self.name}: {self.state}", *parts)

    def _stats_html(self) -> str:
        stats = self.stats()
        if not stats.attrs["stats_enabled"]:
            return _STATS_HINT.once()
        rows = (
            (r.function, r.prog_id, r.run_count, f"{r.avg_ns:.0f}" if r.run_count else "-")
            for r in stats.itertuples()
        )
        return _html.table(["function", "prog id", "runs", "avg ns/run"], rows)


class _OnceHint:
    """A remark shown in the first display that needs it, and in no display after it in this process."""

    def __init__(self, markup: str) -> None:
        self.markup = markup
        self.shown = False

    def once(self) -> str:
        shown, self.shown = self.shown, True
        return "" if shown else self.markup


_STATS_HINT = _OnceHint(
    _html.note(
        _html.Markup(
            "Run counts and run times are off: <code>%bpf stats on</code> turns them on for this kernel ("
            + _html.link("how counting works", "https://docs.ebpf.io/linux/syscall/BPF_ENABLE_STATS/")
            + ")."
        )
    )
)


class _Maps(Mapping[str, "MapView"]):
    """A program's maps by name; the views are made on first use and kept."""

    def __init__(self, program: Program) -> None:
        self._program = program

    def __getitem__(self, name: str) -> MapView:
        program = self._program
        if name not in program._maps:
            program._alive("read a map of")
            try:
                spec = program._loaded.map_spec(name)
            except KeyError:
                raise program._no_map(name) from None
            from .maps.registry import map_view

            program._maps[name] = map_view(program, spec)
        return program._maps[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._program.map_names())

    def __len__(self) -> int:
        return len(self._program.map_names())

    def _ipython_key_completions_(self) -> list[str]:
        return self._program.map_names()


def _load_options(
    source: object, *, name: str, cflags: object, debug: object, attach: object, probes: object, first_line: object
) -> LoadOptions:
    """The arguments of :class:`Program`, checked: a mistake here is an :class:`ArgumentError`, not a crash."""
    if not isinstance(source, str):
        raise ArgumentError(f"the source must be C code as a str, not {type(source).__name__}")
    if not source.strip():
        raise ArgumentError("the cell has no C code to compile", hint="write a program below the %%bpf line")
    if not isinstance(cflags, Sequence) or isinstance(cflags, str) or not all(isinstance(f, str) for f in cflags):
        raise ArgumentError(f"cflags must be a list of strings such as ['-DX=1'], not {cflags!r}")
    if not isinstance(debug, int):
        raise ArgumentError(f"debug must be BCC's debug flags as an int, not {debug!r}")
    if not isinstance(probes, Sequence) or not all(isinstance(p, Probe) for p in probes):
        raise ArgumentError(
            "probes must be a list of bpfnb.Probe, e.g. [bpfnb.Probe('tracepoint', 'sched:sched_switch', 'fn')]"
        )
    if not isinstance(first_line, int) or first_line < 1:
        raise ArgumentError(f"first_line must be a positive int, not {first_line!r}")
    return LoadOptions(
        name=name,
        cflags=tuple(cflags),
        debug=debug,
        attach=bool(attach),
        probes=tuple(probes),
        first_line=first_line,
    )


def _environment(env: object) -> dict[str, str]:
    """``env=`` checked: names and values that are strings."""
    if env is None:
        return {}
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ArgumentError(f"env must map names to values, both strings, e.g. {{'BPFTRACE_STRLEN': '128'}}, not {env!r}")
    return dict(env)
