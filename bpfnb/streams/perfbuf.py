"""Read a ``BPF_PERF_OUTPUT`` perf event array through each CPU's perf ring.

One ``PERF_COUNT_SW_BPF_OUTPUT`` perf event is opened per online CPU and its
fd stored in the map at that CPU's index, which is where
``bpf_perf_event_output`` writes. Each event's ring is mapped as the kernel
lays it out (``struct perf_event_mmap_page`` then ``2**n`` data pages)::

    data_head (offset 1024)   written by the kernel after whole records
    data_tail (offset 1032)   written by us once records are copied out

Records (``struct perf_event_header``: ``u32 type; u16 misc; u16 size``) can
wrap around the end of the data area, so the bytes between tail and head
are copied out in at most two pieces first and parsed from the copy.
``PERF_RECORD_SAMPLE`` carries ``u32 size`` plus the raw bytes the program
sent (padded to 8); ``PERF_RECORD_LOST`` carries ``u64 id, u64 lost``.
Ordering as the kernel asks (tools/include/linux/ring_buffer.h): data_head is
read before the data (acquire), and data_tail is written after the copy
(release); on x86-64 plain aligned 8-byte accesses give both.
"""

from __future__ import annotations

import ctypes
import fcntl
import mmap
import os

import numpy as np

from ..errors import ArgumentError
from ..kernel.constants import (
    PERF_ATTR_WATERMARK,
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_EVENT_IOC_ENABLE,
    PERF_FLAG_FD_CLOEXEC,
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    PERF_SAMPLE_RAW,
    PERF_TYPE_SOFTWARE,
)
from ..kernel.libbpf import map_elem
from ..kernel.perf import PerfEventAttr, online_cpus, perf_event_open
from ..kernel.shared_memory import SharedMapping
from .ringbuf import FIRST_WINDOW

__all__ = ["PerfBufReader", "default_pages", "parse_perf_records", "unwrap"]

_DATA_HEAD = 1024 // 8  # in u64 words of the control page
_DATA_TAIL = 1032 // 8
_SAMPLE_HEADER = 12  # perf_event_header + u32 raw size


def default_pages(*, total_bytes: int = 16 * 2**20) -> int:
    """Pages per CPU so that all CPUs' rings take about ``total_bytes``.

    A power of two between 64 pages (256 KiB) and 1024 pages (4 MiB): on a
    small machine, where another process can keep the consumer off the CPU
    for tens of milliseconds, a tracepoint at full speed (about 60 MB/s of
    24-byte events) still fits.
    """
    share = total_bytes // max(len(online_cpus()), 1) // mmap.PAGESIZE
    return min(max(1 << (share.bit_length() - 1) if share else 1, 64), 1024)


def _open_bpf_output_event(cpu: int, wakeup_bytes: int) -> int:
    attr = PerfEventAttr(
        type=PERF_TYPE_SOFTWARE,
        config=PERF_COUNT_SW_BPF_OUTPUT,
        sample_period=1,
        sample_type=PERF_SAMPLE_RAW,
        flags=PERF_ATTR_WATERMARK,
        wakeup_events=wakeup_bytes,  # a byte count: the watermark flag is set
    )
    try:
        return perf_event_open(attr, pid=-1, cpu=cpu, flags=PERF_FLAG_FD_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"perf_event_open on CPU {cpu}: {exc.strerror}") from None


def parse_perf_records(data: np.ndarray, record_size: int) -> tuple[np.ndarray, int]:
    """Decode a contiguous run of perf records (``uint8``), as copied from one ring.

    Returns ``(payloads, lost)``: a ``(n, record_size)`` ``uint8`` array of
    the samples' raw bytes (zero-filled or cut to ``record_size``) and the sum
    of the ``PERF_RECORD_LOST`` counts. Other record types are skipped.
    """
    pieces: list[np.ndarray] = []
    lost = pos = 0
    end = len(data)
    window = len(data)
    while pos + 8 <= end:
        header = data[pos : pos + 8]
        kind = int(header[:4].view(np.uint32)[0])
        size = int(header[6:8].view(np.uint16)[0])
        if size < 8 or pos + size > end:
            break
        if kind == PERF_RECORD_SAMPLE:
            # Samples of one size follow each other: take the whole run at once.
            count = min((end - pos) // size, window)
            run = data[pos : pos + count * size]
            same = (run.view(np.uint32)[:: size // 4] == PERF_RECORD_SAMPLE) & (
                run.view(np.uint16)[3 :: size // 2] == size
            )
            good = int(np.argmin(same)) if not same.all() else count
            take = min(size - _SAMPLE_HEADER, record_size)
            unit = next(u for u in (4, 2, 1) if take % u == 0)  # the payload starts at 12
            words = run[: good * size].view(f"u{unit}").reshape(good, size // unit)
            payload = words[:, _SAMPLE_HEADER // unit : (_SAMPLE_HEADER + take) // unit]
            if take == record_size:
                rows = payload.copy().view(np.uint8).reshape(good, record_size)
            else:
                rows = np.zeros((good, record_size), dtype=np.uint8)
                rows[:, :take] = payload.view(np.uint8).reshape(good, take)
            pieces.append(rows)
            pos += good * size
            window = 2 * window if good == count else FIRST_WINDOW
            continue
        if kind == PERF_RECORD_LOST:
            lost += int(data[pos + 16 : pos + 24].view(np.uint64)[0])
        pos += size
    if not pieces:
        return np.zeros((0, record_size), dtype=np.uint8), lost
    return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), lost


def unwrap(data: np.ndarray, tail: int, head: int) -> np.ndarray:
    """Copy the bytes from position ``tail`` to ``head`` of the ring ``data``, in order."""
    size = len(data)
    start, length = tail % size, head - tail
    if start + length <= size:
        return data[start : start + length].copy()
    return np.concatenate((data[start:], data[: start + length - size]))


class _CpuRing:
    def __init__(self, cpu: int, pages: int, wakeup_bytes: int) -> None:
        self.cpu = cpu
        self.fd = _open_bpf_output_event(cpu, wakeup_bytes)
        try:
            self.mapping = SharedMapping(self.fd, (pages + 1) * mmap.PAGESIZE, writable=True)
            fcntl.ioctl(self.fd, PERF_EVENT_IOC_ENABLE, 0)
        except OSError:
            os.close(self.fd)
            raise
        self.control = self.mapping.array(np.uint64, count=mmap.PAGESIZE // 8)
        self.data = self.mapping.array(np.uint8, offset=mmap.PAGESIZE)
        self.size = pages * mmap.PAGESIZE

    def take(self) -> np.ndarray:
        """Copy out every record between tail and head and release their space."""
        head = int(self.control[_DATA_HEAD])
        tail = int(self.control[_DATA_TAIL])
        chunk = unwrap(self.data, tail, head)
        self.control[_DATA_TAIL] = head
        return chunk

    def close(self) -> None:
        self.mapping.close()
        os.close(self.fd)


class PerfBufReader:
    """Per-CPU perf rings installed in a ``BPF_MAP_TYPE_PERF_EVENT_ARRAY`` map.

    Parameters
    ----------
    map_fd
        The map's fd (not closed here).
    max_entries
        The map's size; CPUs at or past it are not served.
    pages
        Data pages per CPU, a power of two.
    """

    def __init__(self, map_fd: int, max_entries: int, *, pages: int) -> None:
        if pages & (pages - 1):
            raise ArgumentError(f"pages must be a power of two, not {pages}")
        self.map_fd = map_fd
        self.rings: list[_CpuRing] = []
        try:
            for cpu in online_cpus():
                if cpu >= max_entries:
                    continue
                ring = _CpuRing(cpu, pages, wakeup_bytes=pages * mmap.PAGESIZE // 4)
                self.rings.append(ring)
                key, value = ctypes.c_uint32(cpu), ctypes.c_uint32(ring.fd)
                map_elem("update_elem", map_fd, ctypes.addressof(key), ctypes.addressof(value), 0)
        except OSError:
            self.close()
            raise

    @property
    def fds(self) -> list[int]:
        """The perf event fds, to wait on."""
        return [ring.fd for ring in self.rings]

    def read(self, record_size: int) -> tuple[list[tuple[int, np.ndarray]], int]:
        """Take every CPU's records: ``([(cpu, payloads), ...], lost)``."""
        batches: list[tuple[int, np.ndarray]] = []
        lost = 0
        for ring in self.rings:
            chunk = ring.take()
            if len(chunk):
                payloads, ring_lost = parse_perf_records(chunk, record_size)
                lost += ring_lost
                if len(payloads):
                    batches.append((ring.cpu, payloads))
        return batches, lost

    def close(self) -> None:
        """Remove the perf events from the map, then unmap and close them (idempotent)."""
        for ring in self.rings:
            key = ctypes.c_uint32(ring.cpu)
            try:
                map_elem("delete_elem", self.map_fd, ctypes.addressof(key))
            except OSError:
                pass  # the map may already be gone with its program
            ring.close()
        self.rings = []
