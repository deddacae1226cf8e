"""What crosses the network: Arrow IPC streams and raw buffers, with a few facts.

Engines send what the client asks for in a compact form (no pickling of
pandas objects, optionally compressed with Arrow's own codecs):

- a map's frame (:func:`encode_frame`), made on the engine, where a query
  or top-k cuts it first;
- a stream's rows (:func:`encode_rows`): the raw records as the kernel wrote
  them, in one buffer that no one copies on the way (no per-event work on
  the engine), with the batches' sizes, arrival times and CPUs, the
  engine's clock offset and the ``decode=`` columns it computed (an Arrow
  IPC stream). The client makes the columns (:func:`decode_rows`, then
  :func:`bpfnb.streams.decoding.rows_frame`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..decode.strings import arrow_strings_to_pandas
from ..errors import DecodeError
from ..streams.decoding import Rows

__all__ = ["COMPRESSIONS", "decode_rows", "decode_table", "encode_frame", "encode_rows", "table_facts"]

#: What ``compression=`` accepts: Arrow IPC's own buffer codecs.
COMPRESSIONS = (None, "lz4", "zstd")
_FACTS = b"bpfnb"


def encode_frame(frame: pd.DataFrame, *, facts: Mapping[str, Any] | None = None, compression: str | None = None) -> bytes:
    """``frame`` as the bytes of an Arrow IPC stream; ``facts`` (JSON-able) travel in its schema."""
    # One thread: pyarrow's pool costs more than it saves on a map's frame.
    return _encode(pa.Table.from_pandas(frame, preserve_index=False, nthreads=1), facts, compression)


def encode_rows(rows: Rows, *, compression: str | None = None) -> tuple[dict[str, Any], memoryview]:
    """A stream's ``rows`` for the client: facts, and the records as one buffer, as the kernel wrote them.

    The buffer goes out as it is (compressed with Arrow's codec if asked):
    put at the top of an engine's answer, ipyparallel sends it without a
    copy. The facts are small: the batches' sizes, arrival times and CPUs,
    the clock offset, and the ``decode=`` columns as an Arrow IPC stream.
    """
    records = np.ascontiguousarray(rows.records)
    data: Any = pa.py_buffer(records.view(np.uint8))
    if compression is not None:
        data = pa.Codec(compression).compress(data)
    facts = {
        "rows": len(records),
        "counts": rows.counts,
        "received_ns": rows.received_ns,
        "cpus": rows.cpus,
        "time_field": rows.time_field,
        "clock_offset_ns": rows.clock_offset_ns,
        "compression": compression,
        "decoded": _encode(pa.table(_decoded_arrays(rows.decoded)), None, compression) if rows.decoded else None,
    }
    return facts, memoryview(data)


def decode_rows(facts: Mapping[str, Any], data: Any, dtype: np.dtype) -> Rows:
    """The :class:`Rows` :func:`encode_rows` sent, events of type ``dtype`` (no copy of uncompressed records)."""
    count = int(facts["rows"])
    buffer = pa.py_buffer(data)
    if facts["compression"] is not None:
        buffer = pa.Codec(facts["compression"]).decompress(buffer, decompressed_size=count * dtype.itemsize)
    decoded = decode_table(facts["decoded"]) if facts["decoded"] is not None else None
    return Rows(
        np.frombuffer(buffer, dtype, count=count),
        counts=np.asarray(facts["counts"], dtype=np.int64),
        received_ns=np.asarray(facts["received_ns"], dtype=np.int64),
        cpus=None if facts["cpus"] is None else np.asarray(facts["cpus"], dtype=np.uint32),
        time_field=facts["time_field"],
        clock_offset_ns=int(facts["clock_offset_ns"]),
        decoded={} if decoded is None else {name: _column(decoded.column(name)) for name in decoded.column_names},
    )


def _decoded_arrays(decoded: Mapping[str, Any]) -> dict[str, pa.Array]:
    arrays = {}
    for name, values in decoded.items():
        try:
            arrays[name] = pa.array(values.array if isinstance(values, (pd.Series, pd.Index)) else values)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise DecodeError(
                f"decode={{{name!r}: ...}} gives values that cannot be sent to the client: {exc}",
                hint="a decoder on a cluster stream must return numbers, strings, times or bytes",
            ) from None
    return arrays


def _column(values: pa.ChunkedArray) -> pd.Series:
    """A decoded column as pandas holds it here: strings in pandas' string dtype, as locally."""
    joined = values.combine_chunks()
    return arrow_strings_to_pandas(joined) if pa.types.is_string(joined.type) else joined.to_pandas()


def _encode(table: pa.Table, facts: Mapping[str, Any] | None, compression: str | None) -> bytes:
    if facts:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _FACTS: json.dumps(facts).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=compression)) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_table(data: bytes | memoryview) -> pa.Table:
    """The table an engine sent."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def table_facts(table: pa.Table) -> dict[str, Any]:
    """The facts the engine put in ``table``'s schema (empty if none)."""
    raw = (table.schema.metadata or {}).get(_FACTS)
    return dict(json.loads(raw)) if raw else {}
