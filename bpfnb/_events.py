"""Event streams: ring and perf buffers consumed in the background into DataFrames.

``prog.stream("events")`` returns a :class:`Stream` whose consumer thread
copies records out of the kernel's buffer in bulk (:mod:`bpfnb._ringbuf`,
:mod:`bpfnb._perfbuf`) and keeps them as raw numpy records, bounded by rows
and bytes. Columns are built only when asked for (``df()``, ``on_batch``, a
Parquet capture) by the shared decoder of :mod:`bpfnb._decode`.

Loss is never silent. Perf buffers report the kernel's ``PERF_RECORD_LOST``
counts. Ring buffers have no such record, so :data:`PRELUDE` (C text that
:class:`bpfnb.Program` puts before every program) wraps BCC's
``ringbuf_output``/``ringbuf_reserve`` to count their failures per CPU in the
map :data:`LOST_MAP`; a program with several ring buffers shares one count.
Rows dropped to respect the retention bounds are counted apart (``dropped``).
"""

from __future__ import annotations

import ctypes
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import _html
from ._cstructs import ParseError, SourceTypes, ctype_of
from ._decode import (
    Decoder,
    apply_decoders,
    boot_to_wall,
    dtype_of,
    to_frame,
    utc_times,
)
from ._exceptions import ArgumentError, BpfnbError, DecodeError
from ._libbpf import MAP_TYPES, num_possible_cpus
from ._perfbuf import PerfBufReader, default_pages
from ._ringbuf import RingBufReader
from ._stream_thread import IDLE_WAIT, Batch, Consumer

__all__ = ["LOST_MAP", "PRELUDE", "Stream", "event_struct", "open_stream"]

#: Per-CPU array (one u64 slot) counting failed ring-buffer outputs and reservations.
LOST_MAP = "_bpfnb_ringbuf_lost"

#: C text placed before every program. BCC rewrites ``events.ringbuf_output(...)``
#: into a call of the helper ``bpf_ringbuf_output`` and compiles the rewritten
#: text a second time; these macros turn that call into a counting wrapper
#: (the parenthesized names inside the wrappers escape the macros). The counter
#: is looked up before the call, not only on failure: a lookup in one branch
#: defeats the verifier's state pruning, and a loop of 1000 outputs would then
#: cost it millions of steps instead of tens of thousands.
PRELUDE = f"""\
BPF_PERCPU_ARRAY({LOST_MAP}, u64, 1);
static __always_inline long _bpfnb_ringbuf_output(void *rb, void *data, u64 size, u64 flags) {{
    u32 slot = 0; u64 *lost = {LOST_MAP}.lookup(&slot);
    long err = (bpf_ringbuf_output)(rb, data, size, flags); if (err && lost) (*lost)++; return err;
}}
static __always_inline void *_bpfnb_ringbuf_reserve(void *rb, u64 size, u64 flags) {{
    u32 slot = 0; u64 *lost = {LOST_MAP}.lookup(&slot);
    void *record = (bpf_ringbuf_reserve)(rb, size, flags); if (!record && lost) (*lost)++; return record;
}}
#define bpf_ringbuf_output(rb, data, size, flags) _bpfnb_ringbuf_output(rb, data, size, flags)
#define bpf_ringbuf_reserve(rb, size, flags) _bpfnb_ringbuf_reserve(rb, size, flags)
"""



def event_struct(bpf: Any, name: str, *, source: str | None = None) -> type[ctypes.Structure]:
    """The C struct a program sends to buffer ``name``, as a ctypes class.

    BCC records the field names and type names of the struct passed to the
    last ``perf_submit``/``ringbuf_output``/``ringbuf_reserve`` of ``name``.
    The struct with those field names declared in ``source`` gives the exact
    layout (nested structs, unions, typedefs, bit-fields, packing); the type
    names alone are enough for flat structs of plain types.

    Raises
    ------
    DecodeError
        The program sends nothing BCC could see, or a field's type cannot be
        told; pass ``event_type=`` a ctypes class then.
    """
    from bcc.libbcc import lib

    key = name.encode()
    described = [
        lib.bpf_perf_event_field(bpf.module, key, i).decode().partition("#")
        for i in range(lib.bpf_perf_event_fields(bpf.module, key))
    ]
    if not described:
        raise DecodeError(
            f"BCC saw no event struct sent to {name!r}",
            hint="send a struct with perf_submit/ringbuf_output, or pass event_type=<ctypes class>",
        )
    if source is not None:
        declared = SourceTypes(source).find([field for field, _, _ in described])
        if declared is not None:
            return declared
    try:
        fields = [(field, ctype_of(ctype)) for field, _, ctype in described]
    except ParseError as exc:
        raise DecodeError(
            f"cannot decode the events sent to {name!r}: {exc}",
            hint="pass event_type=<ctypes Structure> describing the event, e.g. built with ctypes",
        ) from None
    return type(f"{name}_event", (ctypes.Structure,), {"_fields_": fields})


class _Decoding:
    """How raw records become a DataFrame: shared by the stream and its thread."""

    def __init__(
        self,
        ctype: type,
        *,
        decode: Mapping[str, Decoder] | None,
        time_field: str | None,
        time_clock: str,
        per_cpu: bool,
    ) -> None:
        self.ctype = ctype
        self.dtype = dtype_of(ctype)
        self.decode = dict(decode or {})
        self.time_field = time_field
        self.time_clock = time_clock
        self.per_cpu = per_cpu
        columns = to_frame({"value": np.zeros(0, self.dtype)}).columns
        if time_field is not None and time_field not in columns:
            raise DecodeError(
                f"time_field={time_field!r} is not a field of the event",
                hint=f"fields are: {', '.join(columns)}",
            )

    def frame(self, batches: list[Batch]) -> pd.DataFrame:
        parts = [b.records for b in batches]
        if len(parts) == 1:
            records = parts[0]
        else:
            records = np.concatenate(parts) if parts else np.zeros(0, self.dtype)
        frame = to_frame({"value": records})
        counts = [len(part) for part in parts]
        if self.time_field is not None:
            times = boot_to_wall(frame[self.time_field].to_numpy(), clock=self.time_clock)
        else:
            times = utc_times(np.repeat(np.array([b.received_ns for b in batches], dtype=np.int64), counts))
        columns: dict[str, Any] = {"time": times}
        if self.per_cpu:
            columns["cpu"] = np.repeat(np.array([b.cpu for b in batches], dtype=np.uint32), counts)
        columns.update({c: frame[c] for c in frame.columns if c not in columns})
        frame = pd.DataFrame(columns, copy=False)
        if self.decode:
            frame = apply_decoders(frame, self.decode)
        return frame


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

    def __init__(self, program: Any, name: str, kind: str, consumer: Consumer, decoding: _Decoding) -> None:
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
        return self._decoding.frame(batches)

    def to_parquet(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write the rows held now to a Parquet file (options go to ``DataFrame.to_parquet``)."""
        self.df().to_parquet(path, index=False, **options)

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

    def live(self, kind: str | None = None, **options: Any) -> Any:
        """A live widget of this stream (default: events per second); see :func:`bpfnb._live.live`."""
        from ._live import live

        return live(self, kind=kind, **options)

    def stop(self) -> None:
        """Stop consuming and release the buffer; the rows stay readable. Idempotent."""
        self._finalizer()

    # -- display -------------------------------------------------------------------

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
        parts = [_html.table(["state", state], counters)]
        if lost:
            parts.append(_html.note(f"{lost:,} events lost in the kernel: the buffer was full.", kind="bad"))
        return _html.card(f"Stream {self.name} ({self.kind})", *parts)


#: Map ids with a stream consuming them: two consumers of one buffer would corrupt it.
_CONSUMED: set[int] = set()


def open_stream(
    program: Any,
    name: str,
    *,
    time_field: str | None = None,
    time_clock: str = "monotonic",
    decode: Mapping[str, Decoder] | None = None,
    event_type: type | None = None,
    max_rows: int = 1_000_000,
    max_bytes: int = 128 * 2**20,
    parquet: str | os.PathLike[str] | None = None,
    on_batch: Callable[[pd.DataFrame], Any] | None = None,
    pages: int | None = None,
) -> Stream:
    """Start consuming the ring or perf buffer ``name`` of ``program`` in the background.

    Parameters
    ----------
    program
        A :class:`bpfnb.Program` (anything with ``.bpf`` and ``.own()``).
    name
        A ``BPF_RINGBUF_OUTPUT`` or ``BPF_PERF_OUTPUT`` map.
    time_field
        An event field holding kernel ns (``bpf_ktime_get_ns()``) to convert
        into the ``time`` column; default: when the batch was received.
    time_clock
        ``"monotonic"`` for ``bpf_ktime_get_ns``, ``"boottime"`` for ``bpf_ktime_get_boot_ns``.
    decode
        Column decoders as for maps, e.g. ``{"saddr": "ipv4"}``.
    event_type
        A ctypes class for the event, when neither BCC nor the program's
        source tells its layout.
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
        ``name`` is not a ring or perf buffer of a live program, is already
        streamed, or cannot be mapped into this process.
    DecodeError
        The event's layout cannot be told, or ``time_field`` is not a field.
    """
    from ._libbpf import map_info

    if max_rows < 1 or max_bytes < 1:
        raise ArgumentError(f"max_rows and max_bytes must be positive, not {max_rows} and {max_bytes}")
    if getattr(program, "closed", False):
        raise BpfnbError(f"cannot stream {name!r}: the program is detached", hint="run its cell again")
    bpf = program.bpf
    try:
        table = bpf.get_table(name.encode())
    except KeyError:
        raise BpfnbError(f"the program has no map {name!r} to stream") from None
    if MAP_TYPES.get(table.ttype) not in ("ringbuf", "perf_event_array"):
        raise BpfnbError(
            f"{name!r} is not a ring or perf buffer",
            hint="stream a BPF_RINGBUF_OUTPUT or BPF_PERF_OUTPUT map; read other maps with prog[name].df()",
        )
    perf = MAP_TYPES.get(table.ttype) == "perf_event_array"
    decoding = _Decoding(
        event_type or event_struct(bpf, name, source=getattr(program, "source", None)),
        decode=decode,
        time_field=time_field,
        time_clock=time_clock,
        per_cpu=perf,
    )
    map_id = map_info(table.map_fd).id
    if map_id in _CONSUMED:
        raise BpfnbError(f"{name!r} is already being streamed", hint="stop the other stream first")
    # Our own fd: the buffer stays valid even if BCC closes its fd before we stop.
    fd = os.dup(table.map_fd)
    try:
        reader: Any = (
            PerfBufReader(fd, table.max_entries, pages=pages or default_pages())
            if perf
            else RingBufReader(fd, table.max_entries)
        )
    except OSError as exc:
        os.close(fd)
        raise BpfnbError(
            f"cannot map the {'perf' if perf else 'ring'} buffer {name!r} into this process: {exc.strerror}",
            hint="a smaller pages= helps when locked memory is short; run `%bpf doctor` to check the machine",
        ) from exc
    consumer = Consumer(name, reader, decoding, [fd], max_rows=max_rows, max_bytes=max_bytes)
    if not perf:
        try:
            lost_fd = os.dup(bpf.get_table(LOST_MAP.encode()).map_fd)
        except KeyError:
            pass  # a program built without bpfnb's prelude: ring-buffer losses are not counted
        else:
            consumer.lost_map = (lost_fd, num_possible_cpus())
            consumer.lost_baseline = consumer.ringbuf_lost()
    consumer.parquet_path = os.fspath(parquet) if parquet is not None else None
    if on_batch is not None:
        consumer.callbacks.append(on_batch)
    stream = Stream(program, name, "perf buffer" if perf else "ring buffer", consumer, decoding)
    _CONSUMED.add(map_id)
    stream._finalizer = weakref.finalize(stream, _finish, consumer, map_id)
    consumer.thread.start()
    program.own(stream)
    return stream


def _finish(consumer: Consumer, map_id: int) -> None:
    consumer.stop()
    _CONSUMED.discard(map_id)
