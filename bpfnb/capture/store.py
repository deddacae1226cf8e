"""Writing a capture directory: frames appended to tables as Parquet parts, the manifest that lists them.

Nothing here knows programs or streams: a :class:`CaptureStore` takes frames
for named tables and a manifest, and keeps the directory loadable at every
moment. A part is written whole under a temporary name and renamed; the
manifest, rewritten the same way by :meth:`CaptureStore.commit`, is what a
reader trusts, so a part that no manifest lists yet is ignored and a part is
deleted (by rotation or compaction) only after a manifest without it is in
place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

from ..errors import ArgumentError, CaptureError
from .layout import FORMAT, TABLES, VERSION, part_name, replacing, write_manifest

__all__ = ["COMPACT_BYTES", "CaptureStore"]

#: Compaction joins a table's parts into files of about this size.
COMPACT_BYTES = 64 * 2**20


class CaptureStore:
    """A new capture directory at ``root``, written part by part.

    Raises
    ------
    ArgumentError
        ``root`` exists and is not an empty directory.
    CaptureError
        ``root`` cannot be created.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()  # BCC changes the working directory while it compiles
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise ArgumentError(
                f"{self.root} already exists: a capture goes to a new directory",
                hint="choose another name, or remove the old capture first",
            )
        try:
            (self.root / TABLES).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CaptureError(f"cannot create the capture directory {self.root}: {exc.strerror}") from exc
        #: Per table: its parts (``file``, ``rows``, ``bytes``), ``rows`` in all and ``rotated_rows``.
        self.tables: dict[str, dict[str, Any]] = {}
        self._next_part = 1
        self._obsolete: list[Path] = []

    @property
    def bytes(self) -> int:
        """The size of every part the manifest lists."""
        return sum(part["bytes"] for entry in self.tables.values() for part in entry["parts"])

    def append(self, table: str, frame: pd.DataFrame) -> None:
        """Write ``frame`` as the newest part of ``table`` (listed from the next :meth:`commit` on)."""
        import pyarrow as pa

        entry = self.tables.setdefault(table, {"parts": [], "rows": 0, "rotated_rows": 0})
        entry["parts"].append(self._write(table, pa.Table.from_pandas(_plain(frame), preserve_index=False)))
        entry["rows"] += len(frame)

    def _write(self, table: str, data: pa.Table) -> dict[str, Any]:
        import pyarrow.parquet as pq

        directory = self.root / TABLES / table
        directory.mkdir(parents=True, exist_ok=True)
        name = part_name(self._next_part)
        self._next_part += 1
        with replacing(directory / name) as tmp:
            pq.write_table(data, tmp, compression="zstd")
        return {"file": name, "rows": data.num_rows, "bytes": (directory / name).stat().st_size}

    def rotate(self, max_bytes: int) -> None:
        """Drop the oldest parts until the capture fits in ``max_bytes``; each table keeps its newest part."""
        while self.bytes > max_bytes:
            candidates = [(entry["parts"][0]["file"], table) for table, entry in self.tables.items() if len(entry["parts"]) > 1]
            if not candidates:
                return
            _, table = min(candidates)
            entry = self.tables[table]
            oldest = entry["parts"].pop(0)
            entry["rows"] -= oldest["rows"]
            entry["rotated_rows"] += oldest["rows"]
            self._obsolete.append(self.root / TABLES / table / oldest["file"])

    def compact(self) -> None:
        """Join each table's parts into as few files as :data:`COMPACT_BYTES` allows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        for table, entry in self.tables.items():
            groups: list[list[dict[str, Any]]] = [[]]
            for part in entry["parts"]:
                if groups[-1] and sum(p["bytes"] for p in groups[-1]) + part["bytes"] > COMPACT_BYTES:
                    groups.append([])
                groups[-1].append(part)
            joined = []
            for group in groups:
                if len(group) < 2:
                    joined += group
                    continue
                paths = [self.root / TABLES / table / part["file"] for part in group]
                whole = pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")
                joined.append(self._write(table, whole))
                self._obsolete += paths
            entry["parts"] = joined

    def commit(self, manifest: dict[str, Any]) -> None:
        """Write the manifest (with the table list), then delete the parts it no longer lists."""
        write_manifest(self.root, {"format": FORMAT, "version": VERSION, **manifest, "tables": self.tables})
        for path in self._obsolete:
            path.unlink(missing_ok=True)
        self._obsolete.clear()


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with categorical columns (a cluster's ``host``) as their values: parts with other categories then join."""
    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    if not categorical:
        return frame
    return frame.assign(**{c: frame[c].astype(frame[c].cat.categories.dtype) for c in categorical})
