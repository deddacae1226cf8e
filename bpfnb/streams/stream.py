"""Event streams: ring and perf buffers consumed in the background into DataFrames.

``prog.stream("events")`` returns a :class:`Stream` whose consumer thread
(:mod:`bpfnb.streams.consumer`) copies records out of the kernel's buffer in
bulk (:mod:`bpfnb.streams.ringbuf`, :mod:`bpfnb.streams.perfbuf`) and keeps
them as raw numpy records, bounded by rows and bytes. Columns are built only
when asked for (``df()``, ``on_batch``, a Parquet capture) by the shared
decoder of :mod:`bpfnb.decode`.

Loss is never silent. Perf buffers report the kernel's ``PERF_RECORD_LOST``
counts. Ring buffers have no such record: the engine counts failed outputs
per CPU in a map of its own (its ``loss_counter``), shared by all of a
program's ring buffers. Rows dropped to respect the retention bounds are
counted apart (``dropped``).
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd

from ..decode.decoders import Decoder
from ..decode.dtypes import dtype_of
from ..display import html as _html
from ..engines.base import MapSpec, Owner, Summary
from ..errors import ArgumentError, BpfnbError
from ..kernel.libbpf import map_info
from .consumer import IDLE_WAIT, Consumer
from .decoding import Batch, EventDecoding, Rows
from .perfbuf import PerfBufReader, default_pages
from .ringbuf import RingBufReader

if TYPE_CHECKING:
    from ..live.widget import Live

__all__ = ["BUFFER_TYPES", "Stream", "StreamOptions", "only_buffer", "open_stream", "require_buffer"]

#: The map types a stream reads, and how displays call them.
BUFFER_TYPES = {"ringbuf": "ring buffer", "perf_event_array": "perf buffer"}


class StreamOptions(TypedDict, total=False):
    """The options of ``prog.stream(name, **options)``; see :func:`open_stream` for each."""

    time_field: str | None
    time_clock: str
    decode: Mapping[str, Decoder] | None
    max_rows: int
    max_bytes: int
    parquet: str | os.PathLike[str] | None
    on_batch: Callable[[pd.DataFrame], Any] | None
    pages: int | None


class Stream:
    """Events from one ring or perf buffer, consumed in the background.

    Made by ``prog.stream(name, ...)`` (see :func:`open_stream`). It runs
    until :meth:`stop`, the program's detach, or the end of Python.

    Examples
    --------
    >>> s = prog.stream("events", time_field="ts")
    >>> s.wait(n=1000)
    >>> s.df().groupby("comm").size()
    >>> s.stop()
    """

    def __init__(self, program: Owner, name: str, kind: str, consumer: Consumer, decoding: EventDecoding) -> None:
        self.program = program
        self.name = name
        self.kind = kind
        self._consumer = consumer
        self._decoding = decoding
        self._finalizer: Callable[[], Any] = consumer.stop

    # -- what it holds --------------------------------------------------------

    def __len__(self) -> int:
        return self._consumer.rows

    @property
    def received(self) -> int:
        """Events received since the stream opened (held or dropped by retention)."""
        return self._consumer.received

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver since the stream opened (buffer full)."""
        return self._consumer.lost()

    @property
    def dropped(self) -> int:
        """Rows received but dropped (oldest first) to stay within ``max_rows``/``max_bytes``."""
        return self._consumer.dropped

    @property
    def rate(self) -> float:
        """Events per second over the last few seconds."""
        return self._consumer.rate()

    @property
    def state(self) -> str:
        """``running``, ``stopped`` or ``failed: <reason>``."""
        return self._consumer.state

    @property
    def running(self) -> bool:
        return self._consumer.state == "running"

    @property
    def callback_errors(self) -> int:
        """How many times an ``on_batch`` function raised (the last error is ``last_error``)."""
        return self._consumer.callback_errors

    @property
    def last_error(self) -> BaseException | None:
        return self._consumer.last_error

    def df(self) -> pd.DataFrame:
        """The rows held now: ``time`` (``cpu`` for perf buffers), then the event's fields.

        Rows come in the order they were read: a ring buffer's order, or for a
        perf buffer each CPU's order within a batch (sort by a time field for
        one order across CPUs).
        """
        with self._consumer.lock:
            batches = list(self._consumer.batches)
        frame = self._decoding.frame(batches)
        frame.attrs["name"] = self.name  # plots and tables name what they show after it
        return frame

    def take_rows(self, max_rows: int = 1_000_000, *, wait: float = 0.0, linger: float = 0.0, pause: float = 0.0) -> Rows:
        """Remove the oldest rows held (at most ``max_rows``) and return them undecoded.

        For a reader that hands rows on as they come (a cluster's engine
        does): what it took is no longer held, so retention only bounds what
        it has not taken yet. :func:`bpfnb.streams.decoding.rows_frame` makes
        them the frame :meth:`df` would, on any machine: times and
        ``decode=`` columns are settled here. ``wait`` blocks up to that many
        seconds for a first row when none is held; ``linger`` then waits up to
        that long for ``max_rows`` of them while events keep coming, so that a
        flood is taken in few, large pieces, and the end of a burst at once:
        once no event came for ``pause`` seconds (a producer that loses its
        CPU for a moment has not stopped).
        """
        if max_rows < 1:
            raise ArgumentError(f"max_rows must be positive, not {max_rows}")
        consumer = self._consumer
        with consumer.lock:
            deadline = time.monotonic() + wait
            while not consumer.rows and consumer.state == "running" and (left := deadline - time.monotonic()) > 0:
                consumer.lock.wait(left)
            deadline = time.monotonic() + linger
            while 0 < consumer.rows < max_rows and consumer.state == "running":
                now = time.monotonic()
                left = deadline - now if consumer.flowing else min(deadline, consumer.paused_at + pause) - now
                if left <= 0:
                    break
                consumer.lock.wait(left)
            batches = consumer.take(max_rows)
        return self._decoding.rows(batches)

    @property
    def dtype(self) -> np.dtype:
        """The numpy record type of one event."""
        return self._decoding.dtype

    def to_parquet(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write the rows held now to a Parquet file (options go to ``DataFrame.to_parquet``)."""
        self.df().to_parquet(path, index=False, **options)

    # -- recording ------------------------------------------------------------------

    @property
    def options(self) -> dict[str, Any]:
        """How the stream was opened: ``time_field``, ``time_clock``, ``decode``, ``max_rows``, ``max_bytes``."""
        decoding, consumer = self._decoding, self._consumer
        return {
            "time_field": decoding.time_field,
            "time_clock": decoding.time_clock,
            "decode": dict(decoding.decode),
            "max_rows": consumer.max_rows,
            "max_bytes": consumer.max_bytes,
        }

    @property
    def record_size(self) -> int:
        """Bytes of one event as the kernel sends it."""
        return self._consumer.record_size

    def add_tap(self, tap: Callable[[list[Batch]], None]) -> None:
        """Hand every batch of raw records to ``tap`` as it arrives, before retention drops any.

        ``tap`` runs in the consumer thread and must only keep the batches
        (a recording decodes them later with :meth:`frame_of`).
        """
        self._consumer.taps.append(tap)

    def remove_tap(self, tap: Callable[[list[Batch]], None]) -> None:
        if tap in self._consumer.taps:
            self._consumer.taps.remove(tap)

    def frame_of(self, batches: list[Batch]) -> pd.DataFrame:
        """Raw batches (from a tap) as the rows :meth:`df` would show for them."""
        return self._decoding.frame(batches)

    # -- reacting and waiting ---------------------------------------------------

    def on_batch(self, fn: Callable[[pd.DataFrame], Any]) -> Callable[[pd.DataFrame], Any]:
        """Call ``fn(frame)`` in the consumer thread with each batch of new rows.

        Returns ``fn``, so it works as a decorator. An exception from ``fn`` is
        counted (``callback_errors``, ``last_error``) and does not stop the stream.
        """
        self._consumer.callbacks.append(fn)
        return fn

    def wait(self, n: int | None = None, *, seconds: float | None = None) -> Stream:
        """Block until ``n`` events were received in all, ``seconds`` passed, or the stream stopped.

        Ctrl-C (a kernel interrupt in Jupyter) ends the wait early, and the
        stream goes on consuming. Returns the stream, to show it.
        """
        consumer = self._consumer
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            with consumer.lock:
                while consumer.state == "running" and (n is None or consumer.received < n):
                    remaining = IDLE_WAIT if deadline is None else deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    consumer.lock.wait(min(remaining, IDLE_WAIT))
        except KeyboardInterrupt:
            pass
        return self

    def live(self, kind: str | None = None, **options: Any) -> Live:
        """A live widget of this stream (default: events per second); see :func:`bpfnb.live.live`."""
        from ..live import live

        return live(self, kind=kind, **options)

    def stop(self) -> None:
        """Stop consuming and release the buffer; the rows stay readable. Idempotent."""
        self._finalizer()

    # -- display -------------------------------------------------------------------

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``."""
        return Summary(f"stream ({self.kind})", self.name, self.state, len(self), self.rate, self.lost)

    def _summary(self) -> list[tuple[str, str]]:
        consumer = self._consumer
        return [
            ("state", self.state),
            ("rows", f"{len(self):,} (max {consumer.max_rows:,} rows, {consumer.max_bytes / 2**20:.0f} MiB)"),
            ("received", f"{self.received:,}"),
            ("rate", f"{self.rate:,.0f} events/s"),
            ("lost (kernel)", f"{self.lost:,}"),
            ("dropped (retention)", f"{self.dropped:,}"),
        ] + ([("on_batch errors", f"{self.callback_errors}: {self.last_error!r}")] if self.callback_errors else [])

    def __repr__(self) -> str:
        return (
            f"<bpfnb.Stream {self.name!r} ({self.kind}) {self.state}: {len(self):,} rows, "
            f"{self.rate:,.0f} events/s, lost {self.lost:,}, dropped {self.dropped:,}>"
        )

    def _repr_html_(self) -> str:
        lost = self.lost
        (_, state), *counters = self._summary()
        parts = [_html.facts([("state", state), *counters])]
        if lost:
            parts.append(_html.note(f"{lost:,} events lost in the kernel: the buffer was full.", kind="bad"))
        return _html.card(f"Stream {self.name} ({self.kind})", *parts)


#: Map ids with a stream consuming them: two consumers of one buffer would corrupt it.
_CONSUMED: set[int] = set()


def require_buffer(spec: MapSpec) -> str:
    """How displays call the buffer ``spec`` (``ring buffer``); an error if it is not one."""
    if spec.map_type not in BUFFER_TYPES:
        raise ArgumentError(
            f"{spec.name!r} is not a ring or perf buffer",
            hint="stream a ring buffer or perf event array; read other maps with prog[name].df()",
        )
    return BUFFER_TYPES[spec.map_type]


def only_buffer(program: str, map_types: Mapping[str, str]) -> str:
    """The one ring or perf buffer among a program's maps (their types by name); an :class:`ArgumentError` unless there is one."""
    buffers = [name for name, map_type in map_types.items() if map_type in BUFFER_TYPES]
    if len(buffers) != 1:
        found = f"{len(buffers)} ring or perf buffers ({', '.join(buffers)})" if buffers else "no ring or perf buffer"
        raise ArgumentError(f"program {program!r} has {found}: name the one to stream, prog.stream(name)")
    return buffers[0]


def open_stream(
    program: Owner,
    spec: MapSpec,
    *,
    event_type: type,
    loss_counter: tuple[int, int] | None = None,
    time_field: str | None = None,
    time_clock: str = "monotonic",
    decode: Mapping[str, Decoder] | None = None,
    max_rows: int = 1_000_000,
    max_bytes: int = 128 * 2**20,
    parquet: str | os.PathLike[str] | None = None,
    on_batch: Callable[[pd.DataFrame], Any] | None = None,
    pages: int | None = None,
) -> Stream:
    """Start consuming the ring or perf buffer ``spec`` of ``program`` in the background.

    Parameters
    ----------
    program
        The program the buffer belongs to; it stops the stream when it detaches.
    spec
        The buffer (a ``BPF_MAP_TYPE_RINGBUF`` or ``PERF_EVENT_ARRAY`` map).
    event_type
        The ctypes type of one event (``prog.stream`` asks the engine for it,
        or takes ``type="struct event"`` / ``event_type=`` from the user).
    loss_counter
        Ring buffers: the fd of the engine's per-CPU map counting failed
        outputs, and the number of CPUs (None: losses are not counted). The
        stream keeps its own duplicate of the fd.
    time_field
        An event field holding kernel ns (``bpf_ktime_get_ns()``) to convert
        into the ``time`` column; default: when the batch was received.
    time_clock
        ``"monotonic"`` for ``bpf_ktime_get_ns``, ``"boottime"`` for ``bpf_ktime_get_boot_ns``.
    decode
        Column decoders as for maps, e.g. ``{"saddr": "ipv4"}``.
    max_rows, max_bytes
        Retention: the oldest rows are dropped (and counted) beyond either
        bound; bytes are those of the raw records.
    parquet
        A file to append every batch to as it arrives, for captures longer than
        memory (all rows, whatever the retention); it is complete once the
        stream stops.
    on_batch
        A function called with each new batch as a DataFrame; see :meth:`Stream.on_batch`.
    pages
        Perf buffers only: pages of ring per CPU, a power of two. The default
        gives all CPUs 16 MiB together, from 256 KiB to 4 MiB per CPU (4 MiB
        holds 60 ms of a tracepoint firing at full speed).

    Returns
    -------
    Stream
        Already consuming; the program stops it when it detaches.

    Raises
    ------
    BpfnbError
        ``spec`` is not a ring or perf buffer, is already streamed, or cannot
        be mapped into this process.
    DecodeError
        ``time_field`` is not a field of the event.
    """
    kind = require_buffer(spec)
    if max_rows < 1 or max_bytes < 1:
        raise ArgumentError(f"max_rows and max_bytes must be positive, not {max_rows} and {max_bytes}")
    if pages is not None and (pages < 1 or pages & (pages - 1)):
        raise ArgumentError(f"pages must be a power of two, not {pages}")
    perf = spec.map_type == "perf_event_array"
    decoding = EventDecoding(dtype_of(event_type), decode=decode, time_field=time_field, time_clock=time_clock, per_cpu=perf)
    map_id = map_info(spec.fd).id
    if map_id in _CONSUMED:
        raise BpfnbError(f"{spec.name!r} is already being streamed", hint="stop the other stream first")
    consumer = _consumer(spec, decoding, kind=kind, pages=pages, max_rows=max_rows, max_bytes=max_bytes)
    try:
        if loss_counter is not None and not perf:
            consumer.lost_map = (os.dup(loss_counter[0]), loss_counter[1])
            consumer.lost_baseline = consumer.ringbuf_lost()
        consumer.parquet_path = os.fspath(parquet) if parquet is not None else None
        if on_batch is not None:
            consumer.callbacks.append(on_batch)
        stream = Stream(program, spec.name, kind, consumer, decoding)
    except BaseException:
        consumer.release()
        raise
    _CONSUMED.add(map_id)
    stream._finalizer = weakref.finalize(stream, _finish, consumer, map_id)
    program.own(stream)  # first: whoever watches the program (a recording) sees the stream's first batch
    consumer.thread.start()
    return stream


def _consumer(
    spec: MapSpec, decoding: EventDecoding, *, kind: str, pages: int | None, max_rows: int, max_bytes: int
) -> Consumer:
    """A consumer of the buffer, on its own duplicate of the map's fd (valid even after the engine closes its own)."""
    fd = os.dup(spec.fd)
    try:
        reader: PerfBufReader | RingBufReader = (
            PerfBufReader(fd, spec.max_entries, pages=pages or default_pages())
            if spec.map_type == "perf_event_array"
            else RingBufReader(fd, spec.max_entries)
        )
    except OSError as exc:
        os.close(fd)
        raise BpfnbError(
            f"cannot map the {kind} {spec.name!r} into this process: {exc.strerror}",
            hint="a smaller pages= helps when locked memory is short; run `%bpf doctor` to check the machine",
        ) from exc
    return Consumer(spec.name, reader, decoding, [fd], max_rows=max_rows, max_bytes=max_bytes)


def _finish(consumer: Consumer, map_id: int) -> None:
    consumer.stop()
    _CONSUMED.discard(map_id)
