"""Read a BPF ring buffer (``BPF_MAP_TYPE_RINGBUF``) straight from its shared memory.

The kernel's layout (Documentation/bpf/ringbuf.rst), mapped here in two parts::

    map fd offset 0          one page, read-write: consumer_pos (u64)
    map fd offset PAGE       one page, read-only:  producer_pos (u64),
                             then the data area, read-only, twice back to back

Each record starts with an 8-byte header: ``u32 len`` whose bit 31 says the
producer has not committed it yet (busy) and bit 30 that it was discarded,
then ``u32`` page offset. A record takes ``round_up(len + 8, 8)`` bytes.
Because the data area appears twice in a row, every run of records from
consumer_pos to producer_pos is contiguous in memory, even across the wrap.

:class:`RingBufReader` copies all committed records of one size as a single
strided numpy copy (the fast path); records of another size and discarded
records are walked one at a time (the slow path). Ordering: the headers are
read before the payloads they cover and consumer_pos is written after the
copies; on x86-64 (total store order) plain aligned 8-byte loads and stores
already have acquire and release semantics.
"""

from __future__ import annotations

import mmap

import numpy as np

from ..kernel.shared_memory import SharedMapping

__all__ = ["BUSY_BIT", "DISCARD_BIT", "FIRST_WINDOW", "HEADER_SIZE", "RingBufReader", "parse_records"]

HEADER_SIZE = 8  # BPF_RINGBUF_HDR_SZ
BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
_LEN_MASK = DISCARD_BIT - 1
#: Headers examined in the first vectorized step after a record of another
#: size; the step then doubles, so that a buffer of mixed sizes costs linear
#: rather than quadratic time, and a buffer of one size is one step.
FIRST_WINDOW = 16

def _stride(size: int) -> int:
    return (size + HEADER_SIZE + 7) & ~7


def parse_records(
    data: np.ndarray, record_size: int, *, limit: int | None = None
) -> tuple[np.ndarray, int, int]:
    """Decode the ring-buffer records at the start of ``data`` (bytes as ``uint8``).

    Parameters
    ----------
    data
        Records as the kernel lays them out, from the consumer position on.
    record_size
        Payload bytes per output row: shorter records are zero-filled (a
        program that sends a prefix of its struct), longer ones cut.
    limit
        Stop after this many bytes (the producer position); default all.

    Returns
    -------
    (payloads, consumed, discarded)
        ``payloads`` is a ``(n, record_size)`` ``uint8`` array (a copy),
        ``consumed`` the bytes up to the first uncommitted record (or the
        limit), ``discarded`` how many discarded records were skipped.
    """
    end = len(data) if limit is None else min(limit, len(data))
    stride = _stride(record_size)
    # Records of the expected size as one structured array: each field is then
    # copied out by a single strided copy, about twice as fast as a 2-D slice.
    layout = np.dtype({
        "names": ["length", "payload"],
        "formats": [np.uint32, f"V{record_size}"],
        "offsets": [0, HEADER_SIZE],
        "itemsize": stride,
    })  # fmt: skip
    pieces: list[np.ndarray] = []
    pos = discarded = 0
    window = len(data)
    while pos + HEADER_SIZE <= end:
        count = min((end - pos) // stride, window)
        good = 0
        if count:
            run = data[pos : pos + count * stride].view(layout)
            # The headers are read first: a committed length is seen before its payload.
            mismatch = np.flatnonzero(run["length"] != record_size)
            good = int(mismatch[0]) if mismatch.size else count
            if good:
                pieces.append(run["payload"][:good].copy().view(np.uint8).reshape(good, record_size))
                pos += good * stride
        if count and good == count:
            window *= 2
            continue
        window = FIRST_WINDOW
        length = int(data[pos : pos + 4].view(np.uint32)[0])
        if length & BUSY_BIT:
            break
        size = length & _LEN_MASK
        if pos + _stride(size) > end:
            break
        if length & DISCARD_BIT:
            discarded += 1
        else:
            row = np.zeros((1, record_size), dtype=np.uint8)
            take = min(size, record_size)
            row[0, :take] = data[pos + HEADER_SIZE : pos + HEADER_SIZE + take]
            pieces.append(row)
        pos += _stride(size)
    if not pieces:
        return np.zeros((0, record_size), dtype=np.uint8), pos, discarded
    payloads = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return payloads, pos, discarded


class RingBufReader:
    """The consumer side of one ring buffer map, mapped into this process.

    Parameters
    ----------
    map_fd
        The ``BPF_MAP_TYPE_RINGBUF`` map's fd (not closed here).
    size
        The map's ``max_entries``: the data area's size, a power of two.
    """

    def __init__(self, map_fd: int, size: int) -> None:
        page = mmap.PAGESIZE
        self.size = size
        self._mask = size - 1
        self._consumer_map = SharedMapping(map_fd, page, writable=True)
        try:
            self._producer_map = SharedMapping(map_fd, page + 2 * size, offset=page)
        except OSError:
            self._consumer_map.close()
            raise
        self._consumer = self._consumer_map.array(np.uint64, count=1)
        self._producer = self._producer_map.array(np.uint64, count=1)
        self._data = self._producer_map.array(np.uint8, offset=page)
        self.discarded = 0

    def read(self, record_size: int) -> np.ndarray:
        """Take every committed record now in the buffer; see :func:`parse_records`.

        Returns a ``(n, record_size)`` ``uint8`` array and advances the
        consumer position past what it returns, freeing that space.
        """
        consumer = int(self._consumer[0])
        available = int(self._producer[0]) - consumer
        if available <= 0:
            return np.zeros((0, record_size), dtype=np.uint8)
        start = consumer & self._mask
        payloads, consumed, discarded = parse_records(self._data[start : start + available], record_size)
        self.discarded += discarded
        if consumed:
            self._consumer[0] = consumer + consumed
        return payloads

    def close(self) -> None:
        """Unmap the buffer (idempotent); arrays from :meth:`read` stay valid."""
        self._consumer_map.close()
        self._producer_map.close()
