"""Where a capture keeps what: the manifest, its tables, their Parquet parts (see CAPTURES.md).

A capture is a directory (or a zip of one)::

    manifest.json
    tables/<table>/part-<n>.parquet

``<table>`` names what the rows are, ``<program>/maps/<map>``,
``<program>/histories/<map>``, ``<program>/streams/<buffer>``, with names
reduced to file-safe characters. Parts are numbered across the whole capture
in the order they were written, so the lowest numbers are the oldest data.
Every file is written under a temporary name and renamed into place: a part
or a manifest is either whole or absent, whenever the writer is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "FORMAT",
    "MANIFEST",
    "TABLES",
    "VERSION",
    "cell_digest",
    "part_name",
    "replacing",
    "table_name",
    "write_manifest",
]

#: ``manifest.json``'s ``format`` and ``version``: a reader refuses anything else.
FORMAT = "bpfnb-capture"
VERSION = 1
MANIFEST = "manifest.json"
TABLES = "tables"

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def table_name(*parts: str) -> str:
    """A table's name from its parts, each reduced to characters any file system and zip tool keeps."""
    return "/".join(_UNSAFE.sub("_", part).strip(".") or "_" for part in parts)


def cell_digest(source: str) -> str:
    """How a capture's timeline names a notebook cell: a digest of its code, so that a replay finds it again."""
    return hashlib.sha256(source.strip().encode()).hexdigest()[:16]


def part_name(number: int) -> str:
    """The file name of part ``number``: zero-padded, so that names sort in the order parts were written."""
    return f"part-{number:08d}.parquet"


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` if the block ends without an error.

    Readers see the old file or the new one, never a piece of it. The block
    creates the file, so it gets the permissions of any new file (mkstemp's
    would be private to this user: a capture is meant to be shared).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    with replacing(root / MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
