"""The engine boundary: what every engine hands to the layers above it.

An engine (BCC, libbpf, bpftrace) turns a cell's text into programs loaded in
the kernel. Above this boundary nothing knows which engine made a map: maps,
streams, decoding, plots, live views, histories and ``test_run`` work from a
map's fd and typed layout (:class:`MapSpec`) and a function's fd. An engine
that cannot hand out fds (bpftrace, a child process that prints its maps)
reports its maps as frames instead (:class:`ReportedMap`), and what its
program prints as lines (:class:`TextOutput`). An engine is a package under
``bpfnb.engines`` whose loaded programs satisfy :class:`LoadedProgram`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from ..kernel.constants import map_type_name
from .hooks import Probe

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LoadOptions", "LoadedProgram", "MapSpec", "Owner", "ReportedMap", "Resource", "Summary", "TextOutput"]


@dataclass(frozen=True)
class MapSpec:
    """One map as the kernel holds it, with the C types of its keys and values.

    ``key_type`` and ``value_type`` are ctypes types with the exact C layout,
    or None where the engine cannot tell (the bytes are then shown raw).
    """

    name: str
    type_id: int
    fd: int
    key_type: type | None
    value_type: type | None
    max_entries: int
    key_size: int
    value_size: int
    map_flags: int
    #: The program declared it as a histogram (a slot -> count map).
    histogram: bool = False
    #: Names of enum values by column (as :func:`bpfnb.decode.columns.columns_of` names
    #: a key's or value's fields), for fields the engine knows to be enums.
    enums: Mapping[str, Mapping[int, str]] = field(default_factory=dict)

    @property
    def map_type(self) -> str:
        """``hash``, ``percpu_array``, ``ringbuf``...: the BPF_MAP_TYPE_* name."""
        return map_type_name(self.type_id)


class ReportedMap(Protocol):
    """A map an engine reports as frames of its latest values, not by fd (bpftrace's maps).

    Every method may be called from any thread.
    """

    name: str
    #: What fills it: ``count``, ``sum``, ``avg``, ``min``, ``max``, ``stats``,
    #: ``hist``, ``lhist``, or ``value`` (a plain assignment).
    kind: str
    #: The columns of its frames that identify a row (the key's parts).
    key_columns: tuple[str, ...]
    #: The other columns: ``count``...; ``count, average, total`` for stats;
    #: ``slot, lo, hi, count`` (bucket frames) for histograms.
    value_columns: tuple[str, ...]
    #: Seconds between two reports; None when it is reported only at the end.
    period: float | None

    @property
    def histogram(self) -> bool:
        """Whether its frames are bucket frames (``hist``, ``lhist``)."""

    @property
    def taken(self) -> float | None:
        """When the latest report was taken (seconds since the epoch); None before the first."""

    def frame(self) -> pd.DataFrame:
        """The latest report as a DataFrame of its own (empty, with the columns, before the first)."""

    def wait(self, newer_than: float, timeout: float) -> bool:
        """Block until a report taken after ``newer_than`` (seconds since the epoch) exists; whether one does."""


class TextOutput(Protocol):
    """The lines a program prints (bpftrace's ``printf``), kept by its engine; any thread may read."""

    @property
    def received(self) -> int:
        """Lines received since the program started."""

    @property
    def dropped(self) -> int:
        """The oldest lines, dropped by the engine to stay within its bound."""

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver (the engine's buffer was full)."""

    @property
    def running(self) -> bool:
        """Whether more lines may come."""

    def lines(self, start: int = 0) -> tuple[list[tuple[int, str]], int, int]:
        """Lines from index ``start`` on: ``(lines, first, end)``.

        ``lines`` are (arrival time in ns since the epoch, text) pairs, the
        index of the first one is ``first`` (above ``start`` when older lines
        were dropped), and ``end`` is the index after the last.
        """

    def rate(self) -> float:
        """Lines per second over the last few seconds."""

    def wait(self, count: int, timeout: float) -> None:
        """Block until ``count`` lines were received in all, no more can come, or ``timeout`` seconds passed."""


@dataclass(frozen=True)
class LoadOptions:
    """How to build a program from a cell, whatever the engine."""

    #: The program's name (libbpf names a cell's global-variable maps after it).
    name: str = "program"
    cflags: tuple[str, ...] = ()
    debug: int = 0
    #: Attach the functions (False loads them only).
    attach: bool = True
    #: Explicit hooks beyond what the engine's own naming implies.
    probes: tuple[Probe, ...] = ()
    #: The number error messages give the source's first line.
    first_line: int = 1
    #: Load BCC cells whose kernel struct reads the headers place elsewhere than the kernel.
    trust_headers: bool = False
    #: bpftrace: milliseconds between the prints that keep its maps current (0: at exit only).
    interval_ms: int = 1000
    #: bpftrace: its settings by environment variable, e.g. ``{"BPFTRACE_MAP_KEYS_MAX": "100000"}``.
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """What ``%bpf ls`` says about a resource in its one row."""

    #: What it is: ``stream (ring buffer)``, ``history``, ``live bar``.
    kind: str
    #: The map it reads.
    name: str
    state: str
    #: Rows it holds (a stream, a history) or drew from (a live plot).
    rows: int | None = None
    #: Events per second (streams).
    rate: float | None = None
    #: Events the kernel could not deliver (streams).
    lost: int | None = None
    #: What it costs this process, in words: ``12 ms a frame (1.2% of a core)``.
    cost: str = ""


class Resource(Protocol):
    """Something that lives only as long as its program: a stream, a recorder, a live plot."""

    @property
    def running(self) -> bool: ...

    def stop(self) -> None: ...

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``."""


class Owner(Protocol):
    """A program as its maps, streams and plots see it: named, alive or not, keeping them, and what it costs."""

    name: str

    @property
    def closed(self) -> bool: ...

    def own(self, resource: Resource) -> None:
        """Stop ``resource`` when the program detaches."""

    def stats(self) -> pd.DataFrame:
        """Per loaded function: runs and run time (counted while the kernel's stats are on)."""


class LoadedProgram(Protocol):
    """A cell's programs, loaded (and attached) by one engine; released by :meth:`release`.

    Loading is all-or-nothing: an engine either returns a program whose every
    requested hook is attached, or raises after releasing what it took.
    """

    #: ``bcc``, ``libbpf`` or ``bpftrace``.
    engine: str
    source: str
    first_line: int
    #: What the compiler and loader printed (warnings, debug output).
    log: str
    #: The compiler's warnings about the source, in the cell's line numbers.
    warnings: str

    @property
    def functions(self) -> list[str]:
        """The program functions the cell defines."""

    @property
    def attachments(self) -> list[Probe]:
        """The hooks attached now."""

    @property
    def sockets(self) -> dict[str, int]:
        """Raw socket fds of socket filters by function."""

    def loaded_functions(self) -> dict[str, list[str]]:
        """Functions loaded into the kernel, with the kinds of hook each serves."""

    def map_names(self) -> list[str]:
        """The user's maps (the engine's own hidden maps are left out)."""

    def map_spec(self, name: str) -> MapSpec | ReportedMap:
        """The map ``name``; ``KeyError`` if there is none."""

    def function_fd(self, function: str) -> int | None:
        """The fd of a loaded function, None if it is not loaded."""

    def program_type(self, function: str) -> str | None:
        """The program type ``function`` is loaded as, where its source fixes it (a libbpf ``SEC``)."""

    def load_function(self, function: str, prog_type: str) -> int:
        """Load ``function`` as ``prog_type`` (if not loaded yet) and return its fd."""

    def event_type(self, buffer: str, type_name: str | None = None) -> type:
        """The ctypes type of the events sent to ring or perf buffer ``buffer``.

        ``type_name`` (``"struct event"``) names it where the engine cannot
        tell by itself.
        """

    def loss_counter(self) -> tuple[int, int] | None:
        """The fd of a per-CPU u64 map counting failed ring-buffer outputs (the engine keeps it), and the CPUs."""

    def text_output(self) -> TextOutput | None:
        """What the program prints as text (bpftrace's ``printf``); None where the engine has no such output."""

    def release(self) -> None:
        """Detach and unload everything; idempotent."""

