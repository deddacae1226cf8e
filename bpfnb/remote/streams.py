"""One stream across hosts: each engine consumes its buffer, this process gathers the rows.

Flow and its bounds, per host:

1. the engine's :class:`bpfnb.Stream` consumes the kernel's buffer and holds
   the rows not yet sent, at most ``max_rows``/``max_bytes`` (the oldest are
   dropped and counted as ``dropped`` on that host);
2. a gatherer thread here asks each engine for its next rows, at most
   ``batch_rows`` at a time and with at most two requests in flight per host
   (one while it is idle): an engine sends only when asked, so a slow client
   or link never builds a queue anywhere but in that bounded hold
   (backpressure);
3. the rows arrive raw (:func:`~bpfnb.remote.wire.encode_rows`: the records as
   the kernel wrote them, the engine does no work per event) and are kept raw
   here, again at most ``max_rows``/``max_bytes`` per host (the oldest dropped
   and counted); columns are made when a frame is asked for.

``lost`` counts what each kernel could not put in its buffer, ``dropped``
what the bounds above let go. Times are each host's own wall clock, converted
from its own boot-time base on the host; ``df(correct_skew=True)`` also
takes out the clock skew the cluster estimated.

A host that stops answering (dead engine, cut link) is marked lost and its
rows so far stay; the others go on. If it answers again it resumes where it
stopped; a host loaded again (``prog.reload()``) rejoins the stream.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..display import html as _html
from ..engines.base import Summary
from ..errors import ArgumentError
from ..streams.decoding import Rows, rows_frame
from . import agent
from .connection import Unreachable, outcome, raise_remote
from .hosted import HostedProgram
from .wire import decode_rows

if TYPE_CHECKING:
    from ..live.widget import Live

__all__ = ["ClusterStream"]

#: Seconds an engine waits for a row before answering "nothing yet".
_LONG_POLL = 0.2
#: Seconds an engine then waits for a whole batch while events keep coming: each
#: request costs it about a millisecond, and holds up other requests to it
#: (map reads) for as long as it waits.
_LINGER = 0.1
#: Seconds without events that end the wait for a whole batch: a producer that
#: loses its CPU for a moment on a busy machine has not stopped, and each
#: request cut short is another millisecond of the engine's CPU.
_PAUSE = 0.005
#: Requests in flight per host while events flow: the engine finds the next one
#: waiting when it answers one. An idle host has one (a long poll).
_IN_FLIGHT = 2
_COUNTERS = ("received", "lost", "dropped")


@dataclass
class _Feed:
    """One host's part of a gathered stream."""

    host: str
    engine: int
    #: The numpy type of its events, as its engine said.
    dtype: np.dtype
    parts: collections.deque[Rows] = field(default_factory=collections.deque)
    rows: int = 0
    bytes: int = 0
    wire_bytes: int = 0
    #: The engine's own counters, as of its last answer.
    remote: dict[str, Any] = field(default_factory=dict)
    dropped_here: int = 0
    #: Requests in flight, oldest first, with when each was sent.
    pending: collections.deque[tuple[float, concurrent.futures.Future[Any]]] = field(default_factory=collections.deque)
    state: str = "running"
    #: Whether its last answer brought rows.
    flowing: bool = False


class ClusterStream:
    """Events of one ring or perf buffer on every host of a :class:`~bpfnb.remote.program.ClusterProgram`.

    Made by ``prog.stream(name, ...)``; the options are :class:`bpfnb.Stream`'s
    (``time_field=``, ``time_clock=``, ``decode=``, ``type=``, ``pages=``),
    with ``max_rows``/``max_bytes`` bounding each host's rows on its engine
    and here, and ``batch_rows`` the most rows one request brings (default
    131072: each request costs the engine about a millisecond, and the last
    batch of a burst crosses the network after the burst, so it is a delay).
    """

    def __init__(self, program: HostedProgram, name: str, options: dict[str, Any]) -> None:
        self.program = program
        self.name = name
        self.max_rows = int(options.pop("max_rows", 1_000_000))
        self.max_bytes = int(options.pop("max_bytes", 128 * 2**20))
        self.batch_rows = int(options.pop("batch_rows", 131_072))
        if min(self.max_rows, self.max_bytes, self.batch_rows) < 1:
            raise ArgumentError("max_rows, max_bytes and batch_rows must be positive")
        for refused in ("parquet", "on_batch"):
            if options.get(refused) is not None:
                raise ArgumentError(f"{refused}= runs on one machine: a cluster stream does not take it")
        self._options = {**options, "max_rows": self.max_rows, "max_bytes": self.max_bytes}
        self._lock = threading.Condition()
        self._feeds: dict[str, _Feed] = {}
        self._history: collections.deque[tuple[float, int]] = collections.deque([(time.monotonic(), 0)])
        self._stopping = threading.Event()
        self.kind = "?"
        self.error: BaseException | None = None
        self._taps: list[Callable[[str, Rows], None]] = []
        self._open(program.running_hosts)
        self._thread = threading.Thread(target=self._run, name=f"bpfnb cluster stream {name}", daemon=True)
        program.own(self)  # first: a recording that follows the program taps the stream before any row comes
        self._thread.start()

    def _open(self, hosts: list[str]) -> None:
        answers = self.program.call_hosts(agent.stream_open, self.name, self._options)
        with self._lock:
            for host in hosts:
                if host in answers:
                    self.kind = answers[host]["kind"]
                    self._feeds[host] = _Feed(host, self.program.state_of(host).engine, answers[host]["dtype"])

    @property
    def options(self) -> dict[str, Any]:
        """How the stream was opened on the hosts: ``time_field``, ``decode``, ``max_rows``, ``max_bytes``..."""
        return {"time_field": None, "time_clock": "monotonic", "decode": {}, **self._options, "batch_rows": self.batch_rows}

    @property
    def record_size(self) -> int:
        """Bytes of one event as the kernels send it (the first host's, should hosts differ)."""
        with self._lock:
            return next((f.dtype.itemsize for f in self._feeds.values()), 0)

    def add_tap(self, tap: Callable[[str, Rows], None]) -> None:
        """Hand every host's rows to ``tap(host, rows)`` as they arrive, before the bounds here drop any.

        ``tap`` runs in the gatherer thread and must only keep the rows
        (a recording makes them columns later with :meth:`frame_of`).
        """
        self._taps.append(tap)

    def remove_tap(self, tap: Callable[[str, Rows], None]) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def rejoin(self, hosts: list[str]) -> None:
        """Stream from ``hosts`` again after the program was loaded there anew (their old rows stay)."""
        answers = {}
        for host in hosts:
            state = self.program.state_of(host)
            answer = self.program.cluster.call(state.engine, agent.stream_open, self.program.key, self.name, self._options)
            if "error" in answer:
                raise_remote(host, answer["error"])
            answers[host] = (state.engine, answer["ok"]["dtype"])
        with self._lock:
            for host, (engine, dtype) in answers.items():
                feed = self._feeds.setdefault(host, _Feed(host, engine, dtype))
                feed.engine, feed.dtype, feed.state, feed.remote = engine, dtype, "running", {}
                feed.pending.clear()

    # -- the gatherer thread ---------------------------------------------------------

    def _run(self) -> None:
        cluster = self.program.cluster
        try:
            while not self._stopping.is_set():
                for feed in list(self._feeds.values()):
                    while len(feed.pending) < (_IN_FLIGHT if feed.flowing else 1) and feed.state == "running":
                        feed.pending.append((time.monotonic(), self._ask(feed)))
                pending = [f for feed in self._feeds.values() for _, f in feed.pending]
                if not pending:
                    self._stopping.wait(_LONG_POLL)
                    continue
                concurrent.futures.wait(pending, timeout=_LONG_POLL, return_when=concurrent.futures.FIRST_COMPLETED)
                now = time.monotonic()
                for feed in list(self._feeds.values()):
                    # In the order they were sent: one engine answers them in that order.
                    while feed.pending and feed.pending[0][1].done():
                        self._receive(feed, _answer(feed.pending.popleft()[1]))
                    if feed.pending and feed.state == "running" and now - feed.pending[0][0] > cluster.lost_after:
                        feed.state = "lost"  # the requests stay: if they are answered, the host is back
                        self.program.mark_lost(feed.host, f"no answer for {cluster.lost_after:g} s")
        except BaseException as exc:  # reported by the stream's state, never lost
            self.error = exc
        finally:
            with self._lock:
                self._lock.notify_all()

    def _ask(self, feed: _Feed) -> concurrent.futures.Future[Any]:
        cluster = self.program.cluster
        return cluster.submit(
            feed.engine,
            agent.stream_take,
            self.program.key,
            self.name,
            max_rows=self.batch_rows,
            wait=_LONG_POLL,
            linger=_LINGER,
            pause=_PAUSE,
            compression=cluster.compression,
        )

    def _receive(self, feed: _Feed, answer: Any) -> None:
        if isinstance(answer, Unreachable):
            feed.state = "lost"
            feed.pending.clear()
            self.program.mark_lost(feed.host, str(answer))
            return
        if "error" in answer:
            feed.state = "lost"
            feed.pending.clear()
            self.program.mark_lost(feed.host, answer["error"]["message"])
            return
        if feed.state == "lost":
            feed.state = "running"
            self.program.mark_answering(feed.host)
        reply, data = answer["ok"], answer["data"]
        rows = decode_rows(reply["rows"], data, feed.dtype) if reply["rows"] is not None else None
        with self._lock:
            feed.remote = reply["counters"]
            feed.flowing = rows is not None
            if rows is not None:
                for tap in list(self._taps):
                    tap(feed.host, rows)
                feed.parts.append(rows)
                feed.rows += len(rows)
                feed.bytes += rows.records.nbytes
                feed.wire_bytes += memoryview(data).nbytes + _facts_size(reply["rows"])
                self._trim(feed)
                self._history.append((time.monotonic(), self.received))
                while len(self._history) > 2 and self._history[1][0] < time.monotonic() - 5:
                    self._history.popleft()
            self._lock.notify_all()

    def _trim(self, feed: _Feed) -> None:
        itemsize = feed.dtype.itemsize
        while feed.parts and (feed.rows > self.max_rows or feed.bytes > self.max_bytes):
            oldest = feed.parts[0]
            excess = max(feed.rows - self.max_rows, -(-(feed.bytes - self.max_bytes) // itemsize))
            if excess >= len(oldest):
                feed.parts.popleft()
                cut = len(oldest)
            else:
                feed.parts[0] = oldest.without_first(excess)
                cut = excess
            feed.rows -= cut
            feed.bytes -= cut * itemsize
            feed.dropped_here += cut

    # -- reading ------------------------------------------------------------------------

    def df(self, *, correct_skew: bool = False, sort: bool = True) -> pd.DataFrame:
        """Every host's rows held here: ``host``, ``time`` (wall clock), then the event's fields.

        ``sort`` orders them by ``time`` across hosts; ``correct_skew`` first
        moves each host's times by its estimated clock skew onto this
        machine's clock.
        """
        with self._lock:
            parts = {h: list(f.parts) for h, f in self._feeds.items()}
        if correct_skew:
            parts = {h: [p.shifted(-self._skew_ns(h)) for p in host_parts] for h, host_parts in parts.items()}
        return self.frame_of(parts, sort=sort)

    def frame_of(self, parts: Mapping[str, Sequence[Rows]], *, sort: bool = True) -> pd.DataFrame:
        """Rows of some hosts (from a tap, or those held) as the frame :meth:`df` makes of them."""
        dtypes = {h: f.dtype for h, f in self._feeds.items()}
        # Hosts whose events have one layout (all, but for hosts of another architecture) make one frame.
        layouts: dict[np.dtype, list[str]] = {}
        for host, host_parts in parts.items():
            if host_parts:
                layouts.setdefault(dtypes[host], []).append(host)
        frames = [self._frame({h: parts[h] for h in hosts}, dtype, sort) for dtype, hosts in layouts.items()]
        if not frames:
            return pd.DataFrame({"host": pd.Categorical([], categories=list(dtypes))})
        if len(frames) == 1:
            return frames[0]
        frame = pd.concat(frames, ignore_index=True)
        return frame.take(_time_order(frame["time"])).reset_index(drop=True) if sort else frame

    def _frame(self, parts: Mapping[str, Sequence[Rows]], dtype: np.dtype, sort: bool) -> pd.DataFrame:
        """One frame of the rows of hosts whose events have one layout, ``dtype``."""
        every = [p for host_parts in parts.values() for p in host_parts]
        categories = pd.Index(list(self._feeds))
        codes = np.repeat(
            categories.get_indexer(pd.Index(list(parts))).astype(np.int32), [sum(map(len, host_parts)) for host_parts in parts.values()]
        )
        order = _time_order(np.concatenate([p.times() for p in every])) if sort else None
        frame = rows_frame(every, dtype, order=order)
        hosts = pd.Categorical.from_codes(codes if order is None else codes[order], categories=categories)
        frame.insert(0, "host", pd.Series(hosts), allow_duplicates=True)
        return frame

    def _skew_ns(self, host: str) -> int:
        found = self.program.cluster.hosts.get(host)
        return 0 if found is None else found.skew_ns

    def host_counts(self) -> dict[str, dict[str, int]]:
        """Per host: rows held here, events received by its engine, lost in its kernel, dropped by the bounds.

        ``dropped`` is the sum of ``dropped_on_host`` (by the engine's bounds:
        those rows never came here) and ``dropped_here`` (by the bounds here).
        """
        with self._lock:
            return {
                h: {
                    "rows": f.rows,
                    "received": int(f.remote.get("received", 0)),
                    "lost": int(f.remote.get("lost", 0)),
                    "dropped": int(f.remote.get("dropped", 0)) + f.dropped_here,
                    "dropped_on_host": int(f.remote.get("dropped", 0)),
                    "dropped_here": f.dropped_here,
                    "waiting": int(f.remote.get("waiting", 0)),
                    "wire_bytes": f.wire_bytes,
                }
                for h, f in self._feeds.items()
            }

    def __len__(self) -> int:
        with self._lock:
            return sum(f.rows for f in self._feeds.values())

    @property
    def received(self) -> int:
        """Rows that arrived here from every host since the stream opened (held or dropped)."""
        return sum(f.rows + f.dropped_here for f in self._feeds.values())

    @property
    def lost(self) -> int:
        """Events the hosts' kernels could not deliver (their buffers were full)."""
        return sum(c["lost"] for c in self.host_counts().values())

    @property
    def dropped(self) -> int:
        """Rows let go to keep within the bounds, on the engines and here."""
        return sum(c["dropped"] for c in self.host_counts().values())

    @property
    def rate(self) -> float:
        """Rows per second arriving here over the last few seconds."""
        with self._lock:
            if self._stopping.is_set():
                return 0.0
            base_t, base_n = self._history[0]
            span = time.monotonic() - base_t
            return (self.received - base_n) / span if span > 0 else 0.0

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def state(self) -> str:
        if self.error is not None:
            return f"failed: {self.error}"
        return "running" if self.running else "stopped"

    def wait(self, n: int | None = None, *, seconds: float | None = None, hosts: dict[str, int] | None = None) -> ClusterStream:
        """Block until ``n`` rows arrived in all (or each host of ``hosts`` sent its count), ``seconds`` passed, or the stream stopped."""
        deadline = None if seconds is None else time.monotonic() + seconds

        def done() -> bool:
            if hosts is not None:
                return all(h in self._feeds and self._feeds[h].rows + self._feeds[h].dropped_here >= c for h, c in hosts.items())
            return n is not None and self.received >= n

        try:
            with self._lock:
                while self.running and not done():
                    left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                    if left <= 0:
                        break
                    self._lock.wait(left)
        except KeyboardInterrupt:
            pass
        return self

    def live(self, kind: str | None = None, **options: Any) -> Live:
        """A live plot of the gathered stream (default: rows per second); see :func:`bpfnb.live.live`."""
        from ..live import live

        return live(self, kind=kind, **options)

    def stop(self) -> None:
        """Stop gathering and stop the engines' consumers; the rows gathered stay readable. Idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join()
        cluster = self.program.cluster
        running = [f for f in self._feeds.values() if f.state == "running"]
        cluster.gather([(f.engine, agent.stream_stop, (self.program.key, self.name), {}) for f in running], cluster.lost_after)
        # An engine answers in order: the requests in flight were answered before the stop
        # was, and their rows are kept.
        for feed in running:
            while feed.pending and feed.pending[0][1].done():
                self._receive(feed, _answer(feed.pending.popleft()[1]))

    # -- display ---------------------------------------------------------------------------

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``."""
        return Summary(f"stream ({self.kind}) on {len(self._feeds)} hosts", self.name, self.state, len(self), self.rate, self.lost)

    _HEADERS = ("host", "state", "rows", "received", "lost (kernel)", "dropped (bounds)", "bytes/row on the wire")

    def _rows(self) -> list[tuple[object, ...]]:
        counts = self.host_counts()
        rows: list[tuple[object, ...]] = []
        for host, feed in self._feeds.items():
            c = counts[host]
            per_row = f"{c['wire_bytes'] / (feed.rows + feed.dropped_here):.1f}" if feed.rows + feed.dropped_here else "-"
            rows.append((host, feed.state, f"{c['rows']:,}", f"{c['received']:,}", f"{c['lost']:,}", f"{c['dropped']:,}", per_row))
        return rows

    def __repr__(self) -> str:
        return (
            f"<bpfnb.ClusterStream {self.name!r} ({self.kind}) {self.state}: {len(self):,} rows from "
            f"{len(self._feeds)} hosts, {self.rate:,.0f} rows/s, lost {self.lost:,}, dropped {self.dropped:,}>\n"
            + _html.text_table(self._HEADERS, self._rows())
        )

    def _repr_html_(self) -> str:
        parts = [_html.table(self._HEADERS, self._rows())]
        if self.lost:
            parts.append(_html.note(f"{self.lost:,} events lost in the hosts' kernels: buffers were full.", kind="bad"))
        return _html.card(f"Stream {self.name} ({self.kind}) on a cluster: {self.state}", *parts)



def _time_order(times: Any) -> np.ndarray:
    """The order of rows by time; numpy's stable sort merges the hosts' runs (each in order already) in linear time."""
    return np.argsort(np.asarray(times, dtype="datetime64[ns]"), kind="stable")


def _facts_size(facts: dict[str, Any]) -> int:
    """About the bytes the facts of some rows took on the wire: their arrays and the decoded columns."""
    arrays = (facts["counts"], facts["received_ns"], facts["cpus"])
    return int(sum(a.nbytes for a in arrays if a is not None)) + len(facts["decoded"] or b"")


def _answer(future: concurrent.futures.Future[Any]) -> Any:
    """A finished request's answer; a bug on the engine becomes that host's error, so the others go on."""
    try:
        return outcome(future)
    except Exception as exc:
        return {"error": {"message": f"{type(exc).__name__}: {exc}"}}
