"""A capture loaded for reading: :func:`load` and the recorded programs it holds.

Needs pandas and pyarrow only: no root, no BCC, no kernel, any operating
system. Programs, maps and streams of a capture read like live ones
(``cap["execs"].stream("events").df()``, ``cap["syscalls"]["counts"].history()``)
and say that they are recordings: their state is ``recorded``, with the time
window they cover.
"""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..decode.decoders import recorded_decoders
from ..display import html as _html
from ..errors import ArgumentError, BpfnbError, CaptureError, NoSuchMapError
from .files import CaptureFiles
from .recorded_maps import RecordedMap
from .recorded_streams import RecordedStream

__all__ = ["Capture", "RecordedHook", "RecordedProgram", "load"]


def load(path: str | os.PathLike[str]) -> Capture:
    """Open the capture at ``path``: a directory a recording wrote, or a zip of one.

    Raises
    ------
    CaptureError
        ``path`` is not a capture bpfnb can read.
    """
    return Capture(CaptureFiles(path))


@dataclass(frozen=True)
class RecordedHook:
    """A hook the recorded program was attached to."""

    kind: str
    target: str
    function: str | None

    def __str__(self) -> str:
        return f"{self.kind} {self.target} -> {self.function}"


class Capture:
    """A recording: its programs with their maps and streams, the machine, the time window."""

    def __init__(self, files: CaptureFiles) -> None:
        self.files = files
        manifest = files.manifest
        self.path = files.path
        self.name: str = manifest["name"]
        #: ``recorded``, or ``incomplete`` for a recording that ended without being stopped (its last flush is here).
        self.state = "recorded" if manifest["state"] == "complete" else "incomplete"
        self.machine: dict[str, Any] = manifest["machine"]
        self.bpfnb_version: str = manifest["bpfnb"]
        #: Wall-clock ns minus each kernel clock's ns on the recording machine.
        self.time_base: dict[str, int] = manifest["time_base"]
        #: Values the notebook kept with :func:`bpfnb.remember` while recording.
        self.notes: dict[str, Any] = manifest.get("notes", {})
        self.programs = [RecordedProgram(self, entry) for entry in manifest["programs"]]
        #: Maps read as they were at this moment (None: at the end); a replayed notebook moves it cell by cell.
        self.cursor: pd.Timestamp | None = None

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """When the recording started and when it last wrote (UTC)."""
        manifest = self.files.manifest
        return pd.Timestamp(manifest["started"]), pd.Timestamp(manifest["ended"])

    @property
    def duration(self) -> pd.Timedelta:
        start, end = self.window
        return end - start

    @cached_property
    def decoders(self) -> dict[str, Callable[[np.ndarray], Any]]:
        """The named decoders of this capture's data: the recording machine's clocks and names."""
        return recorded_decoders(
            offsets=self.time_base,
            syscalls={int(n): name for n, name in self.machine.get("syscalls", {}).items()},
            errnos={int(n): name for n, name in self.machine.get("errno", {}).items()},
        )

    def __getitem__(self, name: str) -> RecordedProgram:
        """The program recorded under ``name`` (the last one, if a cell was run again while recording)."""
        found = [p for p in self.programs if p.name == name]
        if not found:
            known = ", ".join(dict.fromkeys(p.name for p in self.programs)) or "none"
            raise CaptureError(f"the capture {self.name!r} has no program {name!r} (its programs: {known})")
        return found[-1]

    def program(self, name: str, occurrence: int) -> RecordedProgram:
        """The ``occurrence``-th program (0 first) recorded under ``name``, or the last one there is."""
        found = [p for p in self.programs if p.name == name] or [self[name]]
        return found[min(occurrence, len(found) - 1)]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(p.name for p in self.programs))

    def __len__(self) -> int:
        return len(self.programs)

    def table(self, name: str) -> pd.DataFrame:
        """A table of the capture as stored (see CAPTURES.md for the names)."""
        return self.files.frame(name).copy()

    def zip(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write the capture to a zip for sharing (default: beside it, ``<name>.zip``); return its path."""
        if self.files.path.is_file():
            raise ArgumentError(f"{self.path} is already a zip")
        target = Path(path) if path is not None else self.path.with_name(self.path.name + ".zip")
        if target.exists():
            raise ArgumentError(f"{target} already exists", hint="choose another path, or remove the old zip")
        made = shutil.make_archive(str(target.with_suffix("")), "zip", root_dir=self.path.parent, base_dir=self.path.name)
        return Path(made)

    # -- display ----------------------------------------------------------------

    def _facts(self) -> list[tuple[str, object]]:
        start, end = self.window
        kernel = self.machine["kernel"]
        headers = self.machine.get("headers", {})
        facts: list[tuple[str, object]] = [
            ("state", self.state if self.state == "recorded" else "incomplete: the recorder stopped without finishing; this is its last flush"),
            ("window", f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC ({self.duration.total_seconds():.1f} s)"),
            ("machine", f"{self.machine['hostname']} (boot {self.machine.get('boot_id')})"),
            ("kernel", f"{kernel['release']} {kernel['machine']}, build id {kernel.get('build_id')}, BTF {kernel.get('btf_id')}"),
        ]
        if headers.get("path"):
            facts.append(("kernel headers", f"{headers.get('release')} ({'match' if headers.get('matches') else 'another kernel'})"))
        facts += [("bpfnb", self.bpfnb_version), ("files", f"{self.path} ({self.files.size / 1024:,.0f} KiB)")]
        return facts

    def __repr__(self) -> str:
        lines = [f"<bpfnb.Capture {self.name!r}: {self.state}>"]
        lines += [f"  {name}: {value}" for name, value in self._facts()[1:]]
        lines += [f"  program {p.name}: {p.engine}, maps {', '.join(p.map_names()) or '-'}" for p in self.programs]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [
            (p.name, p.engine, "; ".join(f"{h.kind} {h.target}" for h in p.attachments) or "-",
             ", ".join(p.map_names()) or "-", ", ".join(p.stream_names()) or "-")
            for p in self.programs
        ]
        parts = [_html.facts(self._facts()), _html.table(["program", "engine", "hooks", "maps", "streams"], rows)]
        if self.notes:
            parts.append(_html.facts([(f"note {k}", v) for k, v in self.notes.items()]))
        return _html.card(f"Capture {self.name}", *parts)


class RecordedProgram:
    """A program as a capture recorded it: its source, hooks, maps and streams, with the reading API of a live one."""

    def __init__(self, capture: Capture, entry: Mapping[str, Any]) -> None:
        self.capture = capture
        self._entry = entry
        self.name: str = entry["name"]
        self.source: str = entry["source"]
        self.engine: str = entry["engine"]
        #: How the program was built (``cflags``, ``probes``...), as recorded.
        self.options: dict[str, Any] = entry["options"]
        self.functions: list[str] = entry["functions"]
        self.attachments = [RecordedHook(h["kind"], h["target"], h["function"]) for h in entry["attachments"]]
        #: What a live program's compiler printed; a recording keeps none of it.
        self.warnings = self.log = ""
        self._maps = {m["name"]: RecordedMap(self, m) for m in entry["maps"]}
        #: Where a program recorded across hosts ran (a frame: host, state, engine, kernel, reason, skew_ns); None for one host.
        self.hosts: pd.DataFrame | None = (
            pd.DataFrame(entry["hosts"], columns=["host", "state", "engine", "kernel", "reason", "skew_ns"]) if "hosts" in entry else None
        )
        #: Set by a notebook that replays a capture, when its cell's code is not the recorded code.
        self.notice = ""
        self._detached = False

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """From when the recording saw this program until it was detached or the recording ended (UTC)."""
        ended = self._entry.get("ended")
        return pd.Timestamp(self._entry["started"]), pd.Timestamp(ended) if ended else self.capture.window[1]

    state = "recorded"

    @property
    def closed(self) -> bool:
        """True once a notebook replaying the capture detached it (``%bpf detach``)."""
        return self._detached

    def detach(self) -> None:
        """Let the program go, as ``%bpf detach`` does a live one; its maps no longer read."""
        self._detached = True

    close = detach

    def alive(self, doing: str) -> None:
        """Raise if a notebook replaying the capture detached this program."""
        if self._detached:
            raise BpfnbError(f"cannot {doing} {self.name!r}: the program is detached", hint="run its cell again")

    # -- what it holds ---------------------------------------------------------------

    @property
    def maps(self) -> Mapping[str, RecordedMap]:
        """The program's maps by name."""
        return dict(self._maps)

    def map_names(self) -> list[str]:
        return list(self._maps)

    def __getitem__(self, name: str) -> RecordedMap:
        if name not in self._maps:
            raise NoSuchMapError(f"program {self.name!r} has no map {name!r} (its maps: {', '.join(self._maps) or 'none'})")
        return self._maps[name]

    def stream_names(self) -> list[str]:
        """The buffers whose events were recorded."""
        return list(dict.fromkeys(s["name"] for s in self._entry["streams"]))

    def stream(self, name: str | None = None, **options: Any) -> RecordedStream:
        """The events buffer ``name`` delivered while recording; the options are a live stream's (see :class:`RecordedStream`).

        Without a name: the lines the program printed (bpftrace's ``printf``), or else its only recorded buffer.
        """
        self.alive("stream a buffer of")
        if name is None:
            texts = [s["name"] for s in self._entry["streams"] if s["kind"] == "text"]
            names = texts or self.stream_names()
            if len(names) != 1:
                raise ArgumentError(f"name the buffer to stream: {', '.join(names) or 'none was recorded'}")
            name = names[0]
        parts = [s for s in self._entry["streams"] if s["name"] == name]
        if not parts:
            if name in self._maps and self._maps[name].map_type in ("ringbuf", "perf_event_array"):
                raise CaptureError(
                    f"no events of {name!r} were recorded: no stream read the buffer while the recording ran",
                    hint=f"open prog.stream({name!r}) while recording",
                )
            raise NoSuchMapError(f"program {self.name!r} has no buffer {name!r} (its recorded streams: {', '.join(self.stream_names()) or 'none'})")
        return RecordedStream(self, parts, **options)

    @property
    def resources(self) -> list[Any]:
        """Nothing runs on behalf of a recording."""
        return []

    def stats(self) -> pd.DataFrame:
        """No runs: a recording keeps no run counts (the columns of a live program's ``stats()``, no rows)."""
        return pd.DataFrame(columns=["function", "kind", "prog_id", "run_count", "run_time_ns", "avg_ns", "verified_insns"])

    # -- display ------------------------------------------------------------------

    def _title(self) -> str:
        if self._detached:
            return f"Program {self.name}: detached (a recording)"
        start, end = self.window
        where = self.capture.machine["hostname"] if self.hosts is None else f"{len(self.hosts)} hosts"
        return f"Program {self.name}: recorded {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC on {where}"

    def __repr__(self) -> str:
        lines = [f"<bpfnb recorded program {self._title().removeprefix('Program ')}>"]
        if not self._detached:
            lines += [f"  {hook}" for hook in self.attachments]
            if self.hosts is not None:
                lines += [f"  host {h.host}: {h.state}, kernel {h.kernel}" for h in self.hosts.itertuples()]
            lines += [f"  map {m.name}: {m.map_type} {m.key_type} -> {m.value_type}" for m in self._maps.values()]
            lines += [f"  stream {name}" for name in self.stream_names()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self._detached:
            return _html.card(self._title())
        kernel = self.capture.machine["kernel"]
        parts = [_html.note(self.notice)] if self.notice else []
        if self.hosts is None:
            parts.append(_html.facts([("engine", self.engine), ("kernel", f"{kernel['release']} ({kernel['machine']})"), ("capture", self.capture.path)]))
        else:
            parts.append(_html.facts([("engine", self.engine), ("capture", self.capture.path)]))
            parts.append(_html.table(list(self.hosts.columns), self.hosts.itertuples(index=False)))
        if self.attachments:
            parts.append(_html.table(["hook", "target", "function"], ((h.kind, h.target, h.function) for h in self.attachments)))
        maps = [(m.name, m.map_type, m.key_type, m.value_type, _entries(m)) for m in self._maps.values()]
        if maps:
            parts.append(_html.table(["map", "type", "key", "value", "entries at the end"], maps))
        streams = [(s.name, s.kind, f"{s.received:,}", f"{s.lost:,}", f"{s.dropped:,}") for s in (self.stream(n) for n in self.stream_names())]
        if streams:
            parts.append(_html.table(["stream", "kind", "received", "lost", "dropped"], streams))
        parts.append(_html.Markup(f"<details><summary>source</summary><pre>{html.escape(self.source)}</pre></details>"))
        return _html.card(self._title(), *parts)


def _entries(view: RecordedMap) -> object:
    try:
        return len(view)
    except BpfnbError:  # a map the recording could not read
        return "-"
