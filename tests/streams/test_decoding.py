"""A stream's rows before and after their columns are made (no root): recorded kernel records as :class:`Rows`.

The records are those of ``ringbuf_mixed.bin`` (see test_records.py): six
events of one process, ``comm`` "python" or empty, ``ts`` kernel ns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.decode.decoders import clock_offset_ns
from bpfnb.decode.dtypes import dtype_of
from bpfnb.errors import ArgumentError, DecodeError
from bpfnb.streams.decoding import Batch, EventDecoding, rows_frame
from bpfnb.streams.ringbuf import parse_records

from .test_records import SIZE, Event, ring_fixture

DTYPE = dtype_of(Event)


def recorded() -> np.ndarray:
    payloads, _, _ = parse_records(ring_fixture(), SIZE)
    return payloads.view(DTYPE).reshape(len(payloads))


def batches(cpus: tuple[int, int] = (0, 0)) -> list[Batch]:
    """The six records as they could come: two batches of 2 and 4, received 1 ms apart."""
    records = recorded()
    return [Batch(records[:2], 1_700_000_000_000_000_000, cpus[0]), Batch(records[2:], 1_700_000_000_001_000_000, cpus[1])]


def test_rows_time_each_record_by_its_batch_or_its_field():
    by_arrival = EventDecoding(DTYPE, decode=None, time_field=None, time_clock="monotonic", per_cpu=False)
    frame = by_arrival.frame(batches())
    assert frame.columns.tolist()[:2] == ["time", "pid"]
    assert frame["time"].astype("int64").tolist() == [1_700_000_000_000_000_000] * 2 + [1_700_000_000_001_000_000] * 4
    assert frame["seq"].tolist() == [0, 1000, 2000, 1, 1001, 2001]

    by_field = EventDecoding(DTYPE, decode=None, time_field="ts", time_clock="boottime", per_cpu=True)
    rows = by_field.rows(batches(cpus=(3, 1)))
    offset = clock_offset_ns("boottime")
    assert abs(rows.clock_offset_ns - offset) < 1_000_000  # this machine's offset, read as the rows were taken
    frame = rows_frame([rows], DTYPE)
    assert frame.columns.tolist()[:2] == ["time", "cpu"] and frame["cpu"].tolist() == [3, 3, 1, 1, 1, 1]
    ts = recorded()["ts"].astype(np.int64)
    assert (frame["time"].astype("int64").to_numpy() == ts + rows.clock_offset_ns).all()


def test_rows_carry_what_the_decoders_made_where_they_were_taken():
    decoding = EventDecoding(DTYPE, decode={"ts": "boottime", "pid": "hex"}, time_field=None, time_clock="monotonic",
                             per_cpu=False)
    rows = decoding.rows(batches())
    assert set(rows.decoded) == {"ts", "pid"}
    frame = rows_frame([rows], DTYPE)
    assert frame.columns.tolist() == ["time", "pid", "pid_raw", "seq", "ts", "ts_raw", "comm", "flag"]
    assert frame["pid"].iloc[0] == hex(int(recorded()["pid"][0]))
    assert frame["ts"].dt.tz is not None and (frame["ts_raw"].to_numpy() == recorded()["ts"]).all()
    # The same frame as the stream's own df() makes in one step (which reads the boot clock again).
    again = decoding.frame(batches())
    pd.testing.assert_frame_equal(frame.drop(columns="ts"), again.drop(columns="ts"))
    assert ((frame["ts"] - again["ts"]).abs() < pd.Timedelta(1, "ms")).all()


def test_several_rows_joined_and_reordered_keep_each_value_with_its_record():
    decoding = EventDecoding(DTYPE, decode={"pid": "hex"}, time_field=None, time_clock="monotonic", per_cpu=True)
    first, second = decoding.rows(batches(cpus=(0, 1))[:1]), decoding.rows(batches(cpus=(0, 1))[1:])
    whole = rows_frame([first, second], DTYPE)
    assert whole.equals(decoding.frame(batches(cpus=(0, 1))))
    order = np.array([5, 0, 3, 1, 4, 2])
    reordered = rows_frame([first, second], DTYPE, order=order)
    pd.testing.assert_frame_equal(reordered, whole.take(order).reset_index(drop=True))


def test_cutting_the_oldest_rows_keeps_the_rest_as_they_were():
    decoding = EventDecoding(DTYPE, decode={"pid": "hex"}, time_field=None, time_clock="monotonic", per_cpu=True)
    rows = decoding.rows(batches(cpus=(0, 1)))
    whole = rows_frame([rows], DTYPE)
    for cut in range(len(rows) + 1):
        rest = rows.without_first(cut)
        assert len(rest) == len(rows) - cut and rest.counts.sum() == len(rest)
        pd.testing.assert_frame_equal(rows_frame([rest], DTYPE), whole.iloc[cut:].reset_index(drop=True))
    assert not np.shares_memory(rows.without_first(1).records, rows.records)  # what was cut is released


def test_shifted_rows_move_in_time_only():
    for time_field in (None, "ts"):
        decoding = EventDecoding(DTYPE, decode=None, time_field=time_field, time_clock="boottime", per_cpu=False)
        rows = decoding.rows(batches())
        assert (rows.shifted(-5).times() == rows.times() - 5).all()


def test_unknown_clocks_and_fields_are_refused_at_once():
    with pytest.raises(ArgumentError, match="clock must be one of"):
        EventDecoding(DTYPE, decode=None, time_field="ts", time_clock="realtime", per_cpu=False)
    with pytest.raises(DecodeError, match="time_field='when' is not a field"):
        EventDecoding(DTYPE, decode=None, time_field="when", time_clock="boottime", per_cpu=False)
    with pytest.raises(DecodeError, match="cannot decode 'addr'"):
        EventDecoding(DTYPE, decode={"addr": "ipv4"}, time_field=None, time_clock="boottime", per_cpu=False).rows(batches())
