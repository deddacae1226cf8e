"""What engines send (no root): a stream's rows and a map's frame, through the wire format and back.

The rows are recorded kernel records (see tests/streams/test_decoding.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bpfnb.errors import DecodeError
from bpfnb.remote.wire import decode_rows, decode_table, encode_frame, encode_rows, table_facts
from bpfnb.streams.decoding import EventDecoding, rows_frame

from ..streams.test_decoding import DTYPE, batches


@pytest.mark.parametrize("compression", [None, "lz4", "zstd"])
def test_rows_cross_as_the_kernel_wrote_them_and_make_the_local_frame(compression):
    decoding = EventDecoding(DTYPE, decode={"pid": "hex", "ts": "boottime"}, time_field="ts", time_clock="boottime",
                             per_cpu=True)
    rows = decoding.rows(batches(cpus=(2, 0)))
    facts, data = encode_rows(rows, compression=compression)
    if compression is None:
        assert data.nbytes == len(rows) * DTYPE.itemsize  # the records, nothing added per event
        assert np.shares_memory(np.frombuffer(data, np.uint8), rows.records.view(np.uint8))  # not copied
    arrived = decode_rows(facts, bytes(data), DTYPE)
    assert arrived.clock_offset_ns == rows.clock_offset_ns
    pd.testing.assert_frame_equal(rows_frame([arrived], DTYPE), rows_frame([rows], DTYPE))


def test_uncompressed_rows_are_read_where_they_arrived():
    rows = EventDecoding(DTYPE, decode=None, time_field=None, time_clock="boottime", per_cpu=False).rows(batches())
    facts, data = encode_rows(rows)
    received = bytearray(data)
    arrived = decode_rows(facts, received, DTYPE)
    assert np.shares_memory(arrived.records.view(np.uint8), np.frombuffer(received, np.uint8))


def test_a_decoder_whose_values_cannot_travel_is_named():
    decoding = EventDecoding(DTYPE, decode={"pid": lambda raw: [object()] * len(raw)}, time_field=None,
                             time_clock="boottime", per_cpu=False)
    with pytest.raises(DecodeError, match="decode={'pid': ...} gives values that cannot be sent"):
        encode_rows(decoding.rows(batches()))


def test_a_frame_crosses_with_its_facts():
    frame = pd.DataFrame({"key": np.array([1, 2], np.uint32), "comm": ["a", "b"], "value": np.array([3, 4], np.uint64)})
    table = decode_table(encode_frame(frame, facts={"keys": ["key"], "values": ["value"]}, compression="lz4"))
    assert table_facts(table) == {"keys": ["key"], "values": ["value"]}
    assert table.to_pandas()["value"].tolist() == [3, 4]
