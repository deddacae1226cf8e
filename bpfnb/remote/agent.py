"""What runs on each engine: the programs this host holds for clients, and the answers it sends back.

The client applies these module-level functions on an engine (ipyparallel
pickles them by reference, so the engine imports this module; it needs
neither IPython nor ipyparallel). Programs stay here, keyed by an id the
client chose, with their data: a client asks for a map's frame or a stream's
next rows, and gets Arrow IPC bytes (:mod:`bpfnb.remote.wire`) of only that.

A function never raises a :class:`~bpfnb.errors.BpfnbError` across the
network: it answers ``{"error": {...}}`` instead (see :func:`error_record`),
which the client turns back into the same error, naming the host.

An engine that exits releases everything: each program is a
:class:`bpfnb.Program` (released by ``weakref.finalize`` at exit), and the
kernel frees what a killed process held.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import pandas as pd

from ..decode.keyed import split_columns
from ..errors import ArgumentError, BpfnbError, NoSuchMapError
from ..kernel.stats import stats_enabled
from ..program import Program
from ..streams.stream import Stream
from .wire import encode_frame, encode_rows

__all__ = [
    "Held",
    "clock",
    "detach",
    "error_record",
    "identify",
    "load",
    "map_frame",
    "map_len",
    "status",
    "stream_open",
    "stream_stop",
    "stream_take",
]

_T = TypeVar("_T")


@dataclasses.dataclass
class Held:
    """A program this engine holds for a client, with the streams it consumes for it."""

    program: Program
    streams: dict[str, Stream] = dataclasses.field(default_factory=dict)


#: The programs this engine holds, by the client's id for them.
HELD: dict[str, Held] = {}


def error_record(exc: BpfnbError) -> dict[str, Any]:
    """``exc`` as plain data: its class name, message, details, hint and line."""
    return {
        "type": type(exc).__name__,
        "message": exc.message,
        "details": exc.details,
        "hint": exc.hint,
        "line": exc.line,
    }


def _answer(fn: Callable[[], _T]) -> dict[str, Any]:
    try:
        return {"ok": fn()}
    except BpfnbError as exc:
        return {"error": error_record(exc)}


# -- who and when -----------------------------------------------------------------


def identify() -> dict[str, Any]:
    """Who this engine is: the host (hostname and boot id), its kernel, its process."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot_id = f.read().strip()
    return {
        "hostname": socket.gethostname(),
        "boot_id": boot_id,
        "kernel": os.uname().release,
        "pid": os.getpid(),
        "root": os.geteuid() == 0,
        "held": sorted(HELD),
    }


def clock() -> int:
    """This host's wall clock, in ns since the epoch (for the client's skew estimate)."""
    return time.time_ns()


# -- programs -------------------------------------------------------------------------


def load(key: str, source: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Build ``source`` as a :class:`bpfnb.Program` held under ``key``; describe it.

    All-or-nothing on this host, as a Program is. A program already held
    under ``key`` is released once the new one has loaded.
    """

    def build() -> dict[str, Any]:
        program = Program(source, **options)
        old = HELD.pop(key, None)
        HELD[key] = Held(program)
        if old is not None:
            old.program.detach()
        return _describe(program)

    return _answer(build)


def _describe(program: Program) -> dict[str, Any]:
    maps = {}
    for name in program.map_names():
        view = program[name]
        maps[name] = {
            "map_type": view.map_type,
            "key_type": view.key_type,
            "value_type": view.value_type,
            "histogram": view.histogram,
            "value_columns": sorted(view.value_columns),
            "recordable": view.recordable,
        }
    return {
        "engine": program.engine,
        "functions": program.functions,
        "attachments": program.attachments,
        "maps": maps,
        "warnings": program.warnings,
        "log": program.log,
    }


def detach(key: str) -> bool:
    """Detach the program held under ``key``; False if none is."""
    held = HELD.pop(key, None)
    if held is None:
        return False
    held.program.detach()
    return True


def status(key: str) -> dict[str, Any]:
    """How the program under ``key`` fares here: held or not, runs and run time, its streams' counters."""

    def report() -> dict[str, Any]:
        held = HELD.get(key)
        if held is None or held.program.closed:
            return {"held": False}
        stats = held.program.stats()
        return {
            "held": True,
            "stats_enabled": stats_enabled(),
            "run_count": int(stats["run_count"].sum()),
            "run_time_ns": int(stats["run_time_ns"].sum()),
            "streams": {name: _counters(stream) for name, stream in held.streams.items()},
        }

    return _answer(report)


def _held(key: str) -> Held:
    held = HELD.get(key)
    if held is None or held.program.closed:
        raise BpfnbError(
            "the program is not loaded on this host any more (its engine restarted, or it was detached)",
            hint="load it there again: prog.reload()",
        )
    return held


# -- maps -------------------------------------------------------------------------------


def map_frame(
    key: str,
    name: str,
    *,
    df_options: Mapping[str, Any],
    query: str | None = None,
    top: int | None = None,
    by: str | None = None,
    compression: str | None = None,
) -> dict[str, Any]:
    """Map ``name``'s frame here, filtered by ``query`` and cut to the ``top`` rows by ``by``, as Arrow IPC.

    The facts sent along say which columns are keys and which are values
    (what a merge across hosts groups by and adds up).
    """

    def frame() -> bytes:
        view = _held(key).program[name]
        frame = view.df(**df_options)
        keys, values = split_columns(frame, view.value_columns)
        if query is not None:
            frame = _queried(frame, query)
        if top is not None:
            frame = frame.nlargest(top, _sort_column(frame, values, by), keep="first")
        return encode_frame(frame, facts={"keys": keys, "values": values}, compression=compression)

    return _answer(frame)


def map_len(key: str, name: str) -> dict[str, Any]:
    """The entries map ``name`` holds here."""
    return _answer(lambda: len(_held(key).program[name]))


def _queried(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    try:
        return frame.query(query)
    except Exception as exc:  # pandas' own errors, for an expression the user wrote
        raise ArgumentError(
            f"query={query!r} does not apply to this map: {type(exc).__name__}: {exc}",
            hint=f"columns are: {', '.join(map(str, frame.columns))}",
        ) from None


def _sort_column(frame: pd.DataFrame, values: list[str], by: str | None) -> str:
    if by is not None:
        if by not in frame.columns:
            raise ArgumentError(f"by={by!r} is not a column", hint=f"columns are: {', '.join(map(str, frame.columns))}")
        return by
    if len(values) != 1:
        raise ArgumentError(
            "top= needs a column to rank by: the map has "
            + (f"several value columns ({', '.join(values)})" if values else "no numeric value column"),
            hint="name one with by=...",
        )
    return values[0]


# -- streams -----------------------------------------------------------------------------


def stream_open(key: str, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Start consuming buffer ``name`` here; its rows wait (bounded) until the client takes them.

    Answers the stream's kind and the numpy type of its events (the client
    makes the columns from the raw records).
    """

    def start() -> dict[str, Any]:
        held = _held(key)
        if name in held.streams and held.streams[name].running:
            raise BpfnbError(f"{name!r} is already being streamed on this host", hint="stop the other stream first")
        stream = held.program.stream(name, **options)
        assert isinstance(stream, Stream), "a named buffer streams as a Stream"
        held.streams[name] = stream
        return {"kind": stream.kind, "dtype": stream.dtype}

    return _answer(start)


def stream_take(
    key: str,
    name: str,
    *,
    max_rows: int,
    wait: float,
    linger: float = 0.0,
    pause: float = 0.0,
    compression: str | None = None,
) -> dict[str, Any]:
    """The rows of stream ``name`` not yet taken (at most ``max_rows``), raw, with the stream's counters.

    Waits up to ``wait`` seconds for a row when none is there, so that an
    idle stream costs a few round trips a second, then up to ``linger`` for
    more while events keep coming (until none came for ``pause`` seconds),
    so that a flood costs few round trips (each costs the engine about a
    millisecond whatever its size) and the end of a burst goes out soon. The answer's ``ok`` holds the counters and
    the rows' facts (None when no row came), its ``data`` the records
    (:func:`bpfnb.remote.wire.encode_rows`): at the top of the answer,
    where ipyparallel sends a buffer without copying it.
    """

    def take() -> tuple[dict[str, Any], memoryview | None]:
        stream = _stream(key, name)
        rows = stream.take_rows(max_rows, wait=wait, linger=linger, pause=pause)
        facts, data = encode_rows(rows, compression=compression) if len(rows) else (None, None)
        return {"rows": facts, "counters": _counters(stream)}, data

    answer = _answer(take)
    if "ok" in answer:
        answer["ok"], answer["data"] = answer["ok"]
    return answer


def stream_stop(key: str, name: str) -> bool:
    """Stop consuming buffer ``name`` here; False if it was not streamed."""
    held = HELD.get(key)
    stream = held.streams.pop(name, None) if held is not None else None
    if stream is None:
        return False
    stream.stop()
    return True


def _stream(key: str, name: str) -> Stream:
    stream = _held(key).streams.get(name)
    if stream is None:
        raise NoSuchMapError(f"{name!r} is not streamed on this host")
    return stream


def _counters(stream: Stream) -> dict[str, Any]:
    return {
        "received": stream.received,
        "lost": stream.lost,
        "dropped": stream.dropped,
        "waiting": len(stream),
        "state": stream.state,
        "clock": time.time_ns(),
    }

