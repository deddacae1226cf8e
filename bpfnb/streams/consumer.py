"""The thread behind a :class:`bpfnb.Stream`: copy records out, keep them bounded, hand them on.

It owns the buffer reader and every fd of the stream, and holds no reference
to the Stream itself, so that a forgotten stream can be collected (its
``weakref.finalize`` then stops this thread). Records are kept raw, as numpy
structured arrays in batches; columns are made only on demand, so the
thread's cost per event is a copy.
"""

from __future__ import annotations

import ctypes
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..kernel.libbpf import map_elem
from .decoding import Batch, EventDecoding
from .perfbuf import PerfBufReader

if TYPE_CHECKING:
    import pyarrow.parquet as pq


__all__ = ["IDLE_WAIT", "Consumer"]

RATE_WINDOW = 5.0  # seconds of history behind ``rate``
IDLE_WAIT = 0.1  # longest sleep without data: bounds the latency of slow perf events
_BATCH_WAIT = 0.01  # longest pause between copies while events flow
_MIN_WAIT = 0.001  # shortest pause between copies
_BATCH_BYTES = 256 << 10  # records worth pausing for while events flow


class Consumer:
    """The stream's state and its thread; holds no reference to the :class:`Stream`."""

    def __init__(
        self, name: str, reader: Any, decoding: EventDecoding, map_fds: list[int], *, max_rows: int, max_bytes: int
    ) -> None:
        self.reader = reader
        self.decoding = decoding
        self.record_size = decoding.dtype.itemsize
        self.map_fds = map_fds
        self.dtype = decoding.dtype
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.lock = threading.Condition()
        self.batches: deque[Batch] = deque()
        self.rows = self.bytes = self.received = self.dropped = self.kernel_lost = 0
        self.lost_baseline = 0
        self.history: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self.callbacks: list[Callable[[pd.DataFrame], Any]] = []
        #: Functions handed each list of raw batches (a recording's); they must only keep them.
        self.taps: list[Callable[[list[Batch]], None]] = []
        self.callback_errors = 0
        self.last_error: BaseException | None = None
        self.writer: pq.ParquetWriter | None = None
        self.parquet_path: str | None = None
        self.lost_map: tuple[int, int] | None = None  # (fd, possible CPUs)
        self.state = "running"
        #: Whether the last copy found records, and since when it has not (time.monotonic()): a
        #: reader waiting for more stops waiting once they pause.
        self.flowing = False
        self.paused_at = 0.0
        self.stopping = threading.Event()
        self.stopped_from_thread = False
        # A pipe that stop() writes to, to end the thread's wait at once.
        self.wake_read, self.wake = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.thread = threading.Thread(target=self.run, name=f"bpfnb stream {name}", daemon=True)

    # -- the consumer thread ----------------------------------------------------

    def run(self) -> None:
        poller = select.epoll()
        try:
            for fd in self.wait_fds():
                poller.register(fd, select.EPOLLIN)
            poller.register(self.wake_read, select.EPOLLIN)
            last = time.monotonic()
            while not self.stopping.is_set():
                taken = self.drain()
                now = time.monotonic()
                if taken:
                    # Events flow: pause, so that copies come in batches of about
                    # _BATCH_BYTES (each copy costs some 50 us of Python, and may cost
                    # the producer a kernel wake-up). The pause is also how late the
                    # last events of a burst arrive: a flood fills a batch in 2 ms,
                    # where a fixed 10 ms pause made its end arrive 5-10 ms late.
                    # Never longer than _BATCH_WAIT, nor than the producer takes to
                    # fill a quarter of the buffer.
                    rate = taken / max(now - last, 1e-6)
                    pause = max(_BATCH_BYTES / rate, _MIN_WAIT)
                    self.stopping.wait(min(pause, _BATCH_WAIT, self.capacity() / 4 / rate))
                else:
                    if self.flowing:
                        with self.lock:
                            self.flowing, self.paused_at = False, now
                            self.lock.notify_all()
                    poller.poll(IDLE_WAIT)
                last = now
            self.drain()
        except BaseException as exc:  # reported by the stream's state, never lost
            self.last_error = exc
            self.state = f"failed: {exc}"
        finally:
            poller.close()
        if self.stopped_from_thread:
            self.release()

    def wait_fds(self) -> list[int]:
        return self.reader.fds if isinstance(self.reader, PerfBufReader) else self.map_fds[:1]

    def capacity(self) -> int:
        reader = self.reader
        return reader.rings[0].size if isinstance(reader, PerfBufReader) else reader.size

    def drain(self) -> int:
        """Copy out what the kernel has; return the bytes taken."""
        received_ns = time.time_ns()
        if isinstance(self.reader, PerfBufReader):
            per_cpu, lost = self.reader.read(self.record_size)
            batches = [Batch(self.records(p), received_ns, cpu) for cpu, p in per_cpu]
            self.kernel_lost += lost
        else:
            # Ring-buffer losses are read when asked for (lost()), not here: a
            # syscall per copy is a cost the thread would pay for nobody.
            payloads = self.reader.read(self.record_size)
            batches = [Batch(self.records(payloads), received_ns, None)] if len(payloads) else []
        if batches:
            self.deliver(batches)  # before store(): retention may cut these very batches
            self.store(batches)
        return sum(b.records.nbytes for b in batches)

    def records(self, payloads: np.ndarray) -> np.ndarray:
        return payloads.view(self.dtype).reshape(len(payloads))

    def store(self, batches: list[Batch]) -> None:
        with self.lock:
            for batch in batches:
                self.batches.append(batch)
                self.rows += len(batch.records)
                self.bytes += batch.records.nbytes
                self.received += len(batch.records)
            self.flowing = True
            self.trim()
            self.history.append((time.monotonic(), self.received))
            while len(self.history) > 2 and self.history[1][0] < time.monotonic() - RATE_WINDOW:
                self.history.popleft()
            self.lock.notify_all()

    def trim(self) -> None:
        itemsize = self.dtype.itemsize
        while self.batches and (self.rows > self.max_rows or self.bytes > self.max_bytes):
            oldest = self.batches[0]
            excess = max(self.rows - self.max_rows, -(-(self.bytes - self.max_bytes) // itemsize))
            if excess >= len(oldest.records):
                self.batches.popleft()
                cut = len(oldest.records)
            else:
                # A copy, so that the dropped rows' memory is really released.
                oldest.records = oldest.records[excess:].copy()
                cut = excess
            self.rows -= cut
            self.bytes -= cut * itemsize
            self.dropped += cut

    def take(self, max_rows: int) -> list[Batch]:
        """Remove the oldest rows held, at most ``max_rows``, and return their batches (call under ``lock``)."""
        taken: list[Batch] = []
        room = max_rows
        while self.batches and room > 0:
            oldest = self.batches[0]
            if len(oldest.records) <= room:
                taken.append(self.batches.popleft())
            else:
                taken.append(Batch(oldest.records[:room], oldest.received_ns, oldest.cpu))
                oldest.records = oldest.records[room:]
            room -= len(taken[-1].records)
        count = max_rows - room
        self.rows -= count
        self.bytes -= count * self.dtype.itemsize
        return taken

    def deliver(self, batches: list[Batch]) -> None:
        for tap in list(self.taps):
            tap(batches)
        if not self.callbacks and not self.parquet_path:
            return
        frame = self.decoding.frame(batches)
        if self.parquet_path:
            self.write_parquet(frame)
        for callback in list(self.callbacks):
            try:
                callback(frame)
            except Exception as exc:  # the user's code: counted and shown, the stream goes on
                self.callback_errors += 1
                self.last_error = exc

    def write_parquet(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.parquet_path, table.schema)
        self.writer.write_table(table)

    def ringbuf_lost(self) -> int:
        if self.lost_map is None:
            return 0
        fd, cpus = self.lost_map
        slot, values = ctypes.c_uint32(0), (ctypes.c_uint64 * cpus)()
        if not map_elem("lookup_elem", fd, ctypes.addressof(slot), ctypes.addressof(values)):
            return self.kernel_lost
        return sum(values) - self.lost_baseline

    # -- called from other threads --------------------------------------------------

    def rate(self) -> float:
        """Events per second over the last few seconds (0 once stopped)."""
        if self.stopping.is_set():
            return 0.0
        with self.lock:
            now = time.monotonic()
            base_t, base_n = self.history[0]
            for t, n in self.history:
                if t >= now - RATE_WINDOW:
                    break
                base_t, base_n = t, n
            span = now - base_t
            return (self.received - base_n) / span if span > 0 else 0.0

    def lost(self) -> int:
        """Kernel losses since the stream opened, read afresh until the stream releases its fds."""
        with self.lock:
            if self.lost_map is not None:
                self.kernel_lost = self.ringbuf_lost()
            return self.kernel_lost

    def stop(self) -> None:
        """Stop the thread, flush, release every fd and mapping (idempotent).

        Called from the thread itself (an ``on_batch`` function, or garbage
        collection that happens to run there), it only asks the thread to end;
        the thread releases everything on its way out.
        """
        if self.stopping.is_set():
            return
        if self.thread is threading.current_thread():
            self.stopped_from_thread = True
            self.stopping.set()
            return
        self.stopping.set()
        os.write(self.wake, b"!")
        if self.thread.is_alive():
            self.thread.join()
        self.release()

    def release(self) -> None:
        with self.lock:
            if self.state == "running":
                self.state = "stopped"
            if self.wake < 0:
                return
            if not isinstance(self.reader, PerfBufReader):
                self.kernel_lost = self.ringbuf_lost()
            self.reader.close()
            if self.writer is not None:
                self.writer.close()
            for fd in [*self.map_fds, self.wake_read, self.wake] + ([self.lost_map[0]] if self.lost_map else []):
                os.close(fd)
            self.map_fds, self.lost_map, self.wake = [], None, -1
            self.lock.notify_all()
