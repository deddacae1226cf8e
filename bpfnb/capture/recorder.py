"""Recording programs while they run: :class:`Recorder`, :func:`record` and :func:`save`.

A recorder follows programs through their common interface, whatever engine
built them: every stream opened on them hands it its raw batches (a tap, so
the consumer thread only appends a reference), every map history hands it
its snapshots, and the recorder snapshots each map itself. Three threads of
its own do the rest:

- the flush thread decodes what arrived, appends it to the capture's tables
  and rewrites the manifest, every ``flush_interval`` seconds (0.5 s), or
  sooner when half of ``memory_bytes`` is waiting; a process killed at any
  moment leaves a capture that loads, with everything up to the last flush;
- the snapshot thread takes each map's snapshot every ``snapshot_interval``
  seconds (and a last one when the program detaches or the recording stops);
- nothing else: decoding and Parquet writing never run in a stream's thread.

Memory is bounded: past ``memory_bytes`` of events waiting to be written, new
ones are counted as not recorded instead of kept. ``max_bytes`` bounds the
capture on disk: the oldest parts are removed (and counted) to stay within it.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import pandas as pd

from .. import __version__
from ..display import html as _html
from ..engines.base import Resource, Summary
from ..errors import ArgumentError, BpfnbError, CaptureError
from ..maps.history import MapHistory
from ..program import Program
from ..remote.program import ClusterProgram
from ..remote.streams import ClusterStream
from ..streams.decoding import Batch, Rows
from ..streams.stream import Stream
from ..streams.text import TextStream
from . import notes
from .layout import cell_digest, table_name
from .machine import machine_facts, time_base
from .recorded import Capture, load
from .store import CaptureStore

__all__ = ["Recorder", "record", "save"]

#: Map types whose contents come from streams, not snapshots.
_BUFFERS = ("ringbuf", "perf_event_array")
#: What a recording follows: a program here, or one on a cluster's hosts.
Followed = Union[Program, ClusterProgram]
#: Recorders still running, stopped (so finished and loadable) when Python exits.
_running: weakref.WeakSet[Recorder] = weakref.WeakSet()


def _now() -> str:
    return pd.Timestamp.now(tz="UTC").isoformat()


class _FrameSink:
    """Snapshots of one history waiting to be written to ``table``."""

    def __init__(self, table: str, spec: dict[str, Any], history: MapHistory) -> None:
        self.table, self.spec, self.history = table, spec, history
        self.frames: list[pd.DataFrame] = []
        self.lock = threading.Lock()
        history.add_tap(self.add)

    def add(self, stamped: pd.DataFrame) -> None:
        """In the history's thread: keep the snapshot."""
        with self.lock:
            self.frames.append(stamped)
            self.spec["columns"] = list(self.history.snapshot_columns)

    def take(self) -> pd.DataFrame | None:
        with self.lock:
            frames, self.frames = self.frames, []
        if not frames:
            return None
        self.spec["last_rows"] = len(frames[-1])
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def close(self) -> None:
        self.history.remove_tap(self.add)


class _StreamSink:
    """Raw batches of one stream waiting to be decoded and written to ``table``."""

    def __init__(self, recorder: Recorder, table: str, entry: dict[str, Any], stream: Stream) -> None:
        self.recorder, self.table, self.entry, self.stream = recorder, table, entry, stream
        self.batches: list[Batch] = []
        self.lock = threading.Lock()
        self.waiting = 0
        self.lost_before, self.dropped_before = stream.lost, stream.dropped
        stream.add_tap(self.tap)

    def tap(self, batches: list[Batch]) -> None:
        """In the stream's thread: keep the batches, or count them when the recorder is full."""
        size = sum(b.records.nbytes for b in batches)
        rows = sum(len(b.records) for b in batches)
        with self.lock:
            self.entry["received"] += rows
            if not self.recorder.reserve(size):
                self.entry["not_recorded"] += rows
                return
            # Batches of our own around the same arrays: the stream's retention
            # replaces the arrays of its batches to drop rows, and never changes one.
            self.batches.extend(Batch(b.records, b.received_ns, b.cpu) for b in batches)
            self.waiting += size

    def take(self) -> pd.DataFrame | None:
        """The rows that arrived since the last call, decoded (in the flush thread)."""
        with self.lock:
            batches, self.batches = self.batches, []
            waiting, self.waiting = self.waiting, 0
        self.recorder.release(waiting)
        self.entry["lost"] = self.stream.lost - self.lost_before
        self.entry["dropped"] = self.stream.dropped - self.dropped_before
        if not self.stream.running and self.entry["stopped"] is None:
            self.entry["stopped"] = _now()
        return self.stream.frame_of(batches) if batches else None

    def empty(self) -> pd.DataFrame:
        return self.stream.frame_of([])

    def close(self) -> None:
        self.stream.remove_tap(self.tap)


class _HostStreamSink:
    """Rows of one stream across hosts waiting to be made columns and written to ``table``, with a ``host`` column."""

    def __init__(self, recorder: Recorder, table: str, entry: dict[str, Any], stream: ClusterStream) -> None:
        self.recorder, self.table, self.entry, self.stream = recorder, table, entry, stream
        self.parts: dict[str, list[Rows]] = {}
        self.lock = threading.Lock()
        self.waiting = self.refused = 0
        self.before = stream.host_counts()
        stream.add_tap(self.tap)

    def tap(self, host: str, rows: Rows) -> None:
        """In the gatherer thread: keep the rows, or count them when the recorder is full."""
        size = rows.records.nbytes
        with self.lock:
            self.entry["received"] += len(rows)
            if not self.recorder.reserve(size):
                self.refused += len(rows)
                return
            self.parts.setdefault(host, []).append(rows)
            self.waiting += size

    def take(self) -> pd.DataFrame | None:
        """The rows that arrived since the last call, one frame in time order (in the flush thread)."""
        with self.lock:
            parts, self.parts = self.parts, {}
            waiting, self.waiting = self.waiting, 0
            refused = self.refused
        self.recorder.release(waiting)
        _count_hosts(self.entry, self.stream, self.before, refused=refused)
        if not self.stream.running and self.entry["stopped"] is None:
            self.entry["stopped"] = _now()
        return self.stream.frame_of(parts) if parts else None

    def empty(self) -> pd.DataFrame:
        return self.stream.frame_of({})

    def close(self) -> None:
        self.stream.remove_tap(self.tap)


def _count_hosts(entry: dict[str, Any], stream: ClusterStream, before: dict[str, dict[str, int]], *, refused: int = 0) -> None:
    """Set a stream entry's counters, per host and in all, from ``stream``'s counts since ``before``."""
    since = {
        host: {k: counts[k] - before.get(host, {}).get(k, 0) for k in ("lost", "dropped_on_host", "dropped_here")}
        for host, counts in stream.host_counts().items()
    }
    entry["hosts"] = since
    entry["lost"] = sum(c["lost"] for c in since.values())
    entry["dropped"] = sum(c["dropped_here"] for c in since.values())
    # Rows an engine's bounds let go never came here: not in the capture, as those the recorder refused.
    entry["not_recorded"] = refused + sum(c["dropped_on_host"] for c in since.values())


class _TextSink:
    """The lines a program prints (bpftrace's ``printf``), read a part at a time from where the last part ended."""

    def __init__(self, table: str, entry: dict[str, Any], stream: TextStream, *, start: int) -> None:
        self.table, self.entry, self.stream, self.next = table, entry, stream, start
        self.lost_before, self.dropped_before = stream.lost, stream.dropped

    def take(self) -> pd.DataFrame | None:
        frame, after = self.stream.since(self.next)
        self.entry["received"] += after - self.next
        self.next = after
        self.entry["lost"] = self.stream.lost - self.lost_before
        self.entry["not_recorded"] = self.stream.dropped - self.dropped_before
        return frame if len(frame) else None

    def empty(self) -> pd.DataFrame:
        return self.stream.since(self.stream.received)[0]

    def close(self) -> None:
        """Nothing to let go of: the lines are read, not handed over."""


_Sink = Union[_FrameSink, _StreamSink, _HostStreamSink, _TextSink]


class _ProgramRecording:
    """One program followed by a recorder; a resource of the program, so that its detach ends it."""

    def __init__(self, recorder: Recorder, program: Followed, key: str, *, held: bool) -> None:
        self.recorder, self.program, self.key = recorder, program, key
        self.entry: dict[str, Any] = {
            "key": key,
            "name": program.name,
            "engine": program.engine,
            "source": program.source,
            "options": _options(program),
            "functions": list(program.functions),
            "attachments": [{"kind": p.kind, "target": p.target, "function": p.function} for p in program.attachments],
            "started": _now(),
            "ended": None,
            "maps": [],
            "streams": [],
        }
        if isinstance(program, ClusterProgram):
            self.entry["hosts"] = _hosts(program)
        self.lock = threading.Lock()  # held while maps are read: detaching waits for a snapshot to end
        self.running = True
        #: The recorder's own histories, each with the map entry and the key of its spec there.
        self.snapshots: list[tuple[MapHistory, dict[str, Any], str]] = []
        self._maps: dict[str, dict[str, Any]] = {}
        for name in program.map_names():
            self._add_map(name)
        if program.prints:
            self._add_text(held=held)
        program.watch(self.adopt)
        for resource in program.resources:
            self.adopt(resource, held=held)
        program.own(self)

    def _add_map(self, name: str) -> None:
        view = self.program[name]
        entry: dict[str, Any] = {
            "name": name,
            "type": view.map_type,
            "key_type": view.key_type,
            "value_type": view.value_type,
            # Maps an engine reports as frames (bpftrace's) have no size or CPUs of their own.
            "max_entries": getattr(view, "max_entries", None),
            "histogram": bool(view.histogram),
            "percpu": bool(getattr(view, "percpu", False)),
            "value_columns": sorted(view.value_columns),
            "snapshots": None,
            "percpu_rows": None,
            "histories": [],
        }
        self._maps[name] = entry
        self.entry["maps"].append(entry)
        # Buffers are read by streams; queues would be emptied and refilled by a read.
        if view.map_type in _BUFFERS or not view.recordable:
            return
        forms: list[tuple[str, str, dict[str, str]]] = [("snapshots", "maps", {})]
        if entry["percpu"]:
            forms.append(("percpu_rows", "percpu", {"percpu": "rows"}))
        for what, folder, options in forms:
            history = MapHistory(view, interval=None, max_rows=1, **options)
            table = table_name(self.key, folder, name)
            spec: dict[str, Any] = {"table": table, "interval": self.recorder.snapshot_interval, "columns": [], "last_rows": 0}
            self.recorder.follow(_FrameSink(table, spec, history))
            entry[what] = spec
            self.snapshots.append((history, entry, what))

    def _add_text(self, *, held: bool) -> None:
        text = self.program.stream()
        assert isinstance(text, TextStream), "a program that prints streams its lines"
        entry = self._stream_entry(text.name, text.kind, table_name(self.key, "streams", text.name), record_size=0)
        entry["options"] = {}
        sink = _TextSink(entry["table"], entry, text, start=0 if held else text.received)
        if held:  # a one-off save: the lines held now
            lines = sink.take()
            self.recorder.store_frame(sink.table, lines if lines is not None else sink.empty())
            return
        self.recorder.follow(sink)

    def _stream_entry(self, name: str, kind: str, table: str, *, record_size: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "table": table,
            "record_size": record_size,
            "started": _now(),
            "stopped": None,
            "received": 0,
            "lost": 0,
            "dropped": 0,
            "not_recorded": 0,
        }
        self.entry["streams"].append(entry)
        return entry

    def adopt(self, resource: Resource, *, held: bool = False) -> None:
        """Record what ``resource`` produces from now on (and what it holds now, if ``held``)."""
        if isinstance(resource, (Stream, ClusterStream)):
            self._adopt_stream(resource, held=held)
        elif isinstance(resource, MapHistory) and resource.view.name in self._maps:
            self._adopt_history(resource, held=held)

    def _adopt_stream(self, stream: Stream | ClusterStream, *, held: bool) -> None:
        taken = sum(1 for s in self.entry["streams"] if s["name"] == stream.name)
        table = table_name(self.key, "streams", stream.name + (f"~{taken + 1}" if taken else ""))
        options = stream.options
        entry = self._stream_entry(stream.name, stream.kind, table, record_size=stream.record_size)
        entry["options"] = {**options, "decode": {k: repr(v) for k, v in options["decode"].items()}}
        if held:  # a one-off save: the rows held now, and the counters since the stream opened
            entry["received"] = stream.received
            if isinstance(stream, ClusterStream):
                _count_hosts(entry, stream, before={})
            else:
                entry.update(lost=stream.lost, dropped=stream.dropped)
            self.recorder.store_frame(table, stream.df())
            return
        if isinstance(stream, ClusterStream):
            self.recorder.follow(_HostStreamSink(self.recorder, table, entry, stream))
        else:
            self.recorder.follow(_StreamSink(self.recorder, table, entry, stream))

    def _adopt_history(self, history: MapHistory, *, held: bool) -> None:
        entry = self._maps[history.view.name]
        spec: dict[str, Any] = {
            "interval": history.interval,
            "columns": list(history.snapshot_columns),
            "last_rows": 0,
            "options": {k: repr(v) for k, v in history.df_options.items()},
        }
        taken = len(entry["histories"])
        table = table_name(self.key, "histories", history.view.name + (f"~{taken + 1}" if taken else ""))
        spec["table"] = table
        entry["histories"].append(spec)
        if held:  # a one-off save: the snapshots kept now
            latest = history.snapshot()
            spec["last_rows"] = 0 if latest is None else len(latest)
            self.recorder.store_frame(table, history.df())
            return
        self.recorder.follow(_FrameSink(table, spec, history))

    def snapshot(self) -> None:
        """Take every map's snapshot now (the snapshot thread's work, and the last one at the end)."""
        with self.lock:
            if not self.running:
                return
            if isinstance(self.program, ClusterProgram):
                self.entry["hosts"] = _hosts(self.program)
            for taken in list(self.snapshots):
                history, entry, what = taken
                try:
                    history.record()
                except BpfnbError as exc:  # a map this process cannot read: the capture says so
                    self.snapshots.remove(taken)
                    entry[what] = None
                    self.recorder.problems.append(f"map {entry['name']!r} of {self.program.name!r}: {exc.message}")

    def stop(self) -> None:
        """The program detaches (or the recording ends): last snapshots, then follow it no more."""
        self.snapshot()
        with self.lock:
            if not self.running:
                return
            self.running = False
            self.entry["ended"] = _now()
        self.program.unwatch(self.adopt)

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``."""
        state = "recording" if self.running else "stopped"
        return Summary("recording", self.recorder.path.name, state, cost=f"written every {self.recorder.flush_interval:g} s")

    def __repr__(self) -> str:
        return f"<recording of {self.program.name!r} to {self.recorder.path}: {'running' if self.running else 'stopped'}>"


def _options(program: Followed) -> dict[str, Any]:
    if isinstance(program, ClusterProgram):
        options = {**program.options, "on": program.host_names}
        options["probes"] = [str(p) for p in options.get("probes") or ()]
        return options
    options = dataclasses.asdict(program.options)
    options["probes"] = [str(p) for p in program.options.probes]
    return options


def _hosts(program: ClusterProgram) -> list[dict[str, Any]]:
    """Where a cluster program ran, as the manifest keeps it: each host's state, engine, kernel and clock skew."""
    found = []
    for name in program.host_names:
        state, host = program.state_of(name), program.cluster.hosts.get(name)
        found.append(
            {
                "host": name,
                "state": state.state,
                "engine": state.engine,
                "kernel": state.kernel,
                "reason": state.reason,
                "skew_ns": host.skew_ns if host is not None else None,
            }
        )
    return found


class Recorder:
    """Writes what programs produce to a capture directory while they run; see the module docstring.

    Parameters
    ----------
    path : path
        A new directory for the capture.
    programs : Program
        Programs to follow from now on; :meth:`add` adds more.
    name : str, optional
        The capture's name; default the directory's.
    flush_interval : float, optional
        Seconds between writes: how far behind a killed recording can be.
    snapshot_interval : float or None, optional
        Seconds between map snapshots; None takes one only at the end.
    max_bytes : int, optional
        Keep the capture within this many bytes on disk, dropping its oldest parts.
    memory_bytes : int, optional
        Events waiting to be written, at most; more are counted, not kept.
    held : bool, optional
        Write what the programs' streams and histories hold already, rather
        than follow them (:func:`save` does this, and stops at once).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        programs: Sequence[Followed] = (),
        *,
        name: str | None = None,
        flush_interval: float = 0.5,
        snapshot_interval: float | None = 1.0,
        max_bytes: int | None = None,
        memory_bytes: int = 256 * 2**20,
        held: bool = False,
    ) -> None:
        if not 0 < flush_interval <= 60:
            raise ArgumentError(f"flush_interval must be seconds between 0 and 60, not {flush_interval!r}")
        if snapshot_interval is not None and not snapshot_interval > 0:
            raise ArgumentError(f"snapshot_interval must be positive seconds or None, not {snapshot_interval!r}")
        if max_bytes is not None and max_bytes < 1 << 20:
            raise ArgumentError(f"max_bytes must be at least 1 MiB, not {max_bytes!r}")
        for program in programs:
            _check_program(program)
        self.store = CaptureStore(path)
        self.path = self.store.root
        self.name = name or self.path.name
        self.flush_interval, self.snapshot_interval = flush_interval, snapshot_interval
        self.max_bytes, self.memory_bytes = max_bytes, memory_bytes
        #: What could not be recorded (a map this process cannot read), in words.
        self.problems: list[str] = []
        #: The error that stopped the flush thread, if one did.
        self.error: BaseException | None = None
        self._started = _now()
        self._facts = {"machine": machine_facts(), "time_base": time_base()}
        self._programs: list[_ProgramRecording] = []
        #: The manifest's entry of every program followed (they outlive the followers, which hold the programs).
        self._entries: list[dict[str, Any]] = []
        self._sinks: list[_Sink] = []
        self._notes: dict[str, Any] = {}
        self._timeline: list[dict[str, str]] = []
        self._flushes = 0
        self._waiting = 0
        self._lock = threading.RLock()  # the lists above, and the waiting bytes
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        for program in programs:
            self.add(program, held=held)
        self._commit("recording")
        self._threads = [
            threading.Thread(target=self._flush_loop, name=f"bpfnb capture {self.name}", daemon=True),
            threading.Thread(target=self._snapshot_loop, name=f"bpfnb capture {self.name} maps", daemon=True),
        ]
        notes.recording(self, True)
        _running.add(self)
        for thread in self._threads:
            thread.start()

    # -- what is recorded ------------------------------------------------------------

    def add(self, program: Followed, *, held: bool = False) -> None:
        """Follow ``program`` from now on: its maps, and the streams and histories it has or opens."""
        _check_program(program)
        with self._lock:
            if self._stopped:
                raise BpfnbError("this recording has stopped", hint="start a new one")
            same = sum(1 for entry in self._entries if entry["name"] == program.name)
            key = program.name + (f"~{same + 1}" if same else "")
            recording = _ProgramRecording(self, program, key, held=held)
            self._programs.append(recording)
            self._entries.append(recording.entry)

    def follow(self, sink: _Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def store_frame(self, table: str, frame: pd.DataFrame) -> None:
        """Write rows that exist already (a stream's held rows, for :func:`save`)."""
        with self._flushing:
            self.store.append(table, frame)

    def note(self, name: str, value: Any) -> None:
        """Keep ``value`` in the capture's ``notes`` (see :func:`bpfnb.remember`)."""
        with self._lock:
            self._notes[name] = value

    def mark(self, cell: str) -> None:
        """A notebook cell ended: snapshot every map now, and note when (its replay reads maps as of then)."""
        for recording in list(self._programs):
            recording.snapshot()
        with self._lock:
            self._timeline.append({"cell": cell_digest(cell), "time": _now()})

    def reserve(self, size: int) -> bool:
        """Whether ``size`` more bytes of events may wait for the next flush (a stream's thread asks)."""
        with self._lock:
            if self._waiting + size > self.memory_bytes:
                return False
            self._waiting += size
            if self._waiting > self.memory_bytes // 2:
                self._wake.set()
            return True

    def release(self, size: int) -> None:
        with self._lock:
            self._waiting -= size

    # -- the threads ---------------------------------------------------------------------

    def _flush_loop(self) -> None:
        _yield_cpu()
        while not self._stopping.is_set():
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception as exc:  # reported by the recorder's state; the streams go on without it
                self.error = exc
                return

    def _snapshot_loop(self) -> None:
        if self.snapshot_interval is None:
            return
        _yield_cpu()
        next_at = time.monotonic()
        while not self._stopping.wait(max(0.0, next_at - time.monotonic())):
            for recording in list(self._programs):
                recording.snapshot()
            next_at += self.snapshot_interval

    def flush(self) -> None:
        """Write what arrived since the last flush, and the manifest that lists it."""
        with self._flushing:
            with self._lock:
                sinks = list(self._sinks)
            for sink in sinks:
                frame = sink.take()
                if frame is not None:
                    self.store.append(sink.table, frame)
            if self.max_bytes is not None:
                self.store.rotate(self.max_bytes)
            self._commit("recording")

    def _commit(self, state: str) -> None:
        with self._lock:
            programs = list(self._entries)
            recorded_notes = dict(self._notes)
            timeline = list(self._timeline)
        self._flushes += 1
        self.store.commit(
            {
                "name": self.name,
                "state": state,
                "started": self._started,
                "ended": _now(),
                "flushes": self._flushes,
                "bpfnb": __version__,
                **self._facts,
                "settings": {
                    "flush_interval": self.flush_interval,
                    "snapshot_interval": self.snapshot_interval,
                    "max_bytes": self.max_bytes,
                },
                "programs": programs,
                "problems": list(self.problems),
                "notes": recorded_notes,
                "timeline": timeline,
            }
        )

    # -- the end ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._stopped

    def stop(self) -> Capture:
        """Take the last snapshots, write everything, join the parts; return the capture, loaded.

        Idempotent. Raises :class:`CaptureError` if writing failed while recording.
        """
        with self._lock:
            first, self._stopped = not self._stopped, True
        if first:
            for recording in list(self._programs):
                recording.stop()
            self._stopping.set()
            self._wake.set()
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()
            notes.recording(self, False)
            _running.discard(self)
            for sink in self._sinks:
                sink.close()
            if self.error is None:
                self.flush()
                self._write_empty_streams()
                self.store.compact()
                self._commit("complete")
            self._sinks.clear()
            self._programs.clear()  # the programs may go now
        if self.error is not None:
            raise CaptureError(f"the recording to {self.path} failed: {self.error}") from self.error
        return load(self.path)

    def _write_empty_streams(self) -> None:
        """A stream that delivered nothing still gets its table: no rows, but its columns."""
        for sink in self._sinks:
            if not isinstance(sink, _FrameSink) and sink.table not in self.store.tables:
                self.store.append(sink.table, sink.empty())

    # -- display ------------------------------------------------------------------------------

    def _state(self) -> str:
        if self.error is not None:
            return f"failed: {self.error}"
        return "recording" if self.running else "stopped"

    def __repr__(self) -> str:
        names = ", ".join(entry["name"] for entry in self._entries) or "no programs yet"
        return f"<bpfnb.Recorder to {self.path}: {self._state()}, {names}, {self._flushes} writes>"

    def _repr_html_(self) -> str:
        rows = [
            ("state", self._state()),
            ("directory", self.path),
            ("programs", ", ".join(entry["name"] for entry in self._entries) or "none yet"),
            ("written", f"{self.store.bytes / 1024:,.0f} KiB in {self._flushes} writes, every {self.flush_interval:g} s"),
        ]
        parts = [_html.facts(rows)] + [_html.note(problem, kind="bad") for problem in self.problems]
        return _html.card(f"Recording {self.name}", *parts)


def _yield_cpu() -> None:
    """Let the calling thread give way to the streams and the traced workload when CPUs are short.

    Linux gives each thread its own nice value: the recorder's threads can
    fall behind (their memory is bounded) where a stream must not.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


@atexit.register
def _stop_running() -> None:
    # Programs detach at exit too; whichever happens first, each program's
    # last snapshots are taken (at its detach or here) before the final write.
    for recorder in list(_running):
        with contextlib.suppress(Exception):
            recorder.stop()


def _check_program(program: object) -> None:
    if not isinstance(program, (Program, ClusterProgram)):
        raise ArgumentError(f"a recording follows bpfnb.Program objects, not {type(program).__name__}")
    if program.closed:
        raise ArgumentError(f"program {program.name!r} is detached: there is nothing left to record")


def record(path: str | os.PathLike[str], *programs: Followed, **options: Any) -> Recorder:
    """Start recording ``programs`` to a new capture directory; see :class:`Recorder` for the options."""
    return Recorder(path, programs, **options)


def save(path: str | os.PathLike[str], *programs: Followed) -> Capture:
    """Write a one-off capture of ``programs`` now: maps, streams' held rows, histories; return it loaded.

    A ``path`` ending in ``.zip`` gets a zip (the directory is made beside it first, then removed).
    """
    if not programs:
        raise ArgumentError("save() needs at least one program: bpfnb.save(path, prog, ...)")
    target = Path(path)
    zipped = target.suffix == ".zip"
    if zipped and target.exists():
        raise ArgumentError(f"{target} already exists", hint="choose another name, or remove the old capture first")
    directory = target.with_suffix("") if zipped else target
    recorder = Recorder(directory, programs, snapshot_interval=None, held=True)
    capture = recorder.stop()
    if not zipped:
        return capture
    made = capture.zip(target)
    import shutil

    shutil.rmtree(directory)
    return load(made)
