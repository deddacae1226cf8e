"""Frames across the network: Arrow IPC streams, with a few facts riding in the schema's metadata.

Engines send what the client asks for as one Arrow IPC stream (columnar, no
pickling of pandas objects, optionally compressed); the client reads it back
into Arrow and makes pandas columns only when a frame is asked for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = ["COMPRESSIONS", "decode_table", "encode_frame", "table_facts"]

#: What ``compression=`` accepts: Arrow IPC's own buffer codecs.
COMPRESSIONS = (None, "lz4", "zstd")
_FACTS = b"bpfnb"


def encode_frame(frame: pd.DataFrame, *, facts: Mapping[str, Any] | None = None, compression: str | None = None) -> bytes:
    """``frame`` as the bytes of an Arrow IPC stream; ``facts`` (JSON-able) travel in its schema."""
    # One thread: pyarrow's pool costs more than it saves on a batch of a stream.
    table = pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)
    if facts:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _FACTS: json.dumps(facts).encode()})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def decode_table(data: bytes | memoryview) -> pa.Table:
    """The table an engine sent."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def table_facts(table: pa.Table) -> dict[str, Any]:
    """The facts :func:`encode_frame` put in ``table``'s schema (empty if none)."""
    raw = (table.schema.metadata or {}).get(_FACTS)
    return dict(json.loads(raw)) if raw else {}
