"""Parsing ring-buffer and perf-buffer records from bytes recorded from the kernel (no root).

Fixtures in tests/data, recorded on Linux 6.18 from programs of
tests/privileged/test_events.py (the struct is its ``struct event``):

- ``ringbuf_mixed.bin``: the bytes between consumer and producer position of a
  ring buffer after two getppid() calls of the MIXED program. Per call: the
  whole struct (seq n), its 16-byte prefix (seq n+1000), a reserved then
  discarded record (seq 999999), a reserved and submitted one (seq n+2000).
- ``perf_ring_tail4032_head4696.bin``: CPU 0's whole 4096-byte perf ring
  after a burst of 100 samples (63 fitted, read out) and a burst of 10: a
  PERF_RECORD_LOST of 37, then 10 samples (seq 100..109), wrapping around
  the end of the ring.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

from bpfnb.decode.columns import to_frame
from bpfnb.decode.dtypes import dtype_of
from bpfnb.streams.perfbuf import parse_perf_records, unwrap
from bpfnb.streams.ringbuf import BUSY_BIT, DISCARD_BIT, HEADER_SIZE, parse_records

DATA = Path(__file__).parents[1] / "data"


class Event(ctypes.Structure):
    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("seq", ctypes.c_uint64),
        ("ts", ctypes.c_uint64),
        ("comm", ctypes.c_char * 16),
        ("flag", ctypes.c_uint8),
    ]


SIZE = ctypes.sizeof(Event)  # 48


def records(payloads: np.ndarray):
    return to_frame({"value": payloads.view(dtype_of(Event)).reshape(len(payloads))})


def ring_fixture() -> np.ndarray:
    return np.frombuffer((DATA / "ringbuf_mixed.bin").read_bytes(), dtype=np.uint8).copy()


def header(length: int) -> bytes:
    return np.array([length, 0], dtype=np.uint32).tobytes()


def test_recorded_ring_buffer_with_mixed_sizes_and_discards():
    data = ring_fixture()
    payloads, consumed, discarded = parse_records(data, SIZE)
    assert (consumed, discarded) == (len(data), 2)
    frame = records(payloads)
    assert frame["seq"].tolist() == [0, 1000, 2000, 1, 1001, 2001]
    whole, prefix = frame.iloc[[0, 3, 2, 5]], frame.iloc[[1, 4]]
    assert (whole["flag"] == 0xAB).all() and (whole["comm"] == "python").all()
    assert (whole["ts"] > 0).all() and whole["pid"].nunique() == 1
    # A prefix of the struct: the fields it holds, zeros after them.
    assert (prefix["pid"] == whole["pid"].iloc[0]).all()
    assert (prefix["ts"] == 0).all() and (prefix["comm"] == "").all() and (prefix["flag"] == 0).all()


def test_recorded_ring_buffer_headers_are_as_documented():
    data = ring_fixture()
    lengths = [int(data[pos : pos + 4].view(np.uint32)[0]) for pos in (0, 56, 80, 136)]
    assert lengths == [SIZE, 16, SIZE | DISCARD_BIT, SIZE]


def test_a_busy_record_stops_the_reader_before_it():
    data = ring_fixture()
    data[136:140] = np.frombuffer(np.uint32(SIZE | BUSY_BIT).tobytes(), np.uint8)
    payloads, consumed, discarded = parse_records(data, SIZE)
    assert consumed == 136 and discarded == 1
    assert records(payloads)["seq"].tolist() == [0, 1000]


def test_a_limit_inside_a_record_leaves_it_for_later():
    data = ring_fixture()
    payloads, consumed, _ = parse_records(data, SIZE, limit=56 + 10)
    assert consumed == 56 and len(payloads) == 1


def test_records_longer_than_the_struct_are_cut():
    data = np.frombuffer(header(12) + bytes(range(12)) + bytes(4), np.uint8)
    payloads, consumed, _ = parse_records(data, 8)
    assert consumed == 24 and payloads.tolist() == [list(range(8))]


def test_alternating_sizes_over_many_records():
    # Exercises the switch between the vectorized and the record-by-record paths.
    pieces, expected = [], []
    for i in range(20000):
        if i % 3 == 2:
            pieces.append(header(4) + np.uint32(i).tobytes() + bytes(4))  # padded to 8
        else:
            pieces.append(header(8) + np.uint64(i).tobytes())
        expected.append(i)
    data = np.frombuffer(b"".join(pieces), np.uint8)
    payloads, consumed, discarded = parse_records(data, 8)
    assert consumed == len(data) and discarded == 0
    assert payloads.view(np.uint64)[:, 0].tolist() == expected


def test_empty_and_header_only_input():
    assert parse_records(np.zeros(0, np.uint8), SIZE)[0].shape == (0, SIZE)
    assert parse_records(np.zeros(HEADER_SIZE - 1, np.uint8), SIZE)[1] == 0


def test_recorded_perf_ring_wraps_and_reports_losses():
    ring = np.frombuffer((DATA / "perf_ring_tail4032_head4696.bin").read_bytes(), np.uint8)
    chunk = unwrap(ring, 4032, 4696)
    assert len(chunk) == 664
    payloads, lost = parse_perf_records(chunk, SIZE)
    assert lost == 37
    frame = records(payloads)
    assert frame["seq"].tolist() == list(range(100, 110))
    assert (frame["flag"] == 0xAB).all() and (frame["comm"] == "python").all()


def test_perf_samples_of_several_sizes():
    def sample(payload: bytes) -> bytes:
        raw = payload + bytes(-(len(payload) + 4) % 8)
        return np.array([9], np.uint32).tobytes() + np.array([0, 12 + len(raw)], np.uint16).tobytes() + (
            np.uint32(len(raw)).tobytes() + raw
        )

    data = np.frombuffer(sample(b"\x01" * 4) + sample(b"\x02" * 12) + sample(b"\x03" * 4), np.uint8)
    payloads, lost = parse_perf_records(data, 8)
    assert lost == 0
    assert payloads.tolist() == [[1] * 4 + [0] * 4, [2] * 8, [3] * 4 + [0] * 4]


@pytest.mark.parametrize("tail,head", [(0, 0), (4000, 4000)])
def test_perf_ring_without_new_records(tail, head):
    assert len(unwrap(np.zeros(4096, np.uint8), tail, head)) == 0
