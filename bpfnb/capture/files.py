"""Reading a capture's files, from its directory or from a zip of it, with pandas and pyarrow only.

A zip may hold the capture's files at its top or inside one directory (what
zipping the directory itself gives). Tables are read when first asked for,
from exactly the parts the manifest lists: a part written after the last
manifest (by a recorder killed mid-flush) is not part of the capture.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ..errors import CaptureError
from .layout import FORMAT, MANIFEST, TABLES, VERSION

__all__ = ["CaptureFiles", "recorded"]


class CaptureFiles:
    """The manifest and tables of the capture at ``path`` (a directory or a ``.zip``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        #: Where the capture's files start inside a zip (None: ``path`` is a directory).
        self._prefix: str | None = None
        if self.path.is_dir():
            manifest = self._read_text(MANIFEST, missing=f"{self.path} has no {MANIFEST}: it is not a capture")
        elif zipfile.is_zipfile(self.path):
            self._prefix = self._zip_prefix()
            manifest = self._read_text(MANIFEST, missing=f"{self.path} holds no {MANIFEST}: it is not a capture")
        elif self.path.exists():
            raise CaptureError(f"{self.path} is neither a capture directory nor a zip of one")
        else:
            raise CaptureError(f"there is no capture at {self.path}", hint="give the directory or .zip a recording wrote")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest)
        except ValueError as exc:
            raise CaptureError(f"{self.path}: {MANIFEST} is not JSON ({exc})") from None
        if self.manifest.get("format") != FORMAT or self.manifest.get("version") != VERSION:
            raise CaptureError(
                f"{self.path} is not a bpfnb capture of version {VERSION} "
                f"(format {self.manifest.get('format')!r}, version {self.manifest.get('version')!r})",
                hint="load it with the bpfnb version that wrote it",
            )
        self._frames: dict[str, pd.DataFrame] = {}

    def _zip_prefix(self) -> str:
        with zipfile.ZipFile(self.path) as archive:
            names = [n for n in archive.namelist() if PurePosixPath(n).name == MANIFEST]
        if not names:
            return ""
        # The shallowest manifest: the capture's own, not one of a capture stored inside it.
        parent = str(PurePosixPath(min(names, key=lambda n: n.count("/"))).parent)
        return "" if parent == "." else parent + "/"

    def _read_bytes(self, name: str) -> bytes:
        if self._prefix is None:
            return (self.path / name).read_bytes()
        # Opened for each read: a loaded capture holds no file open.
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self._prefix + name)

    def _read_text(self, name: str, *, missing: str) -> str:
        try:
            return self._read_bytes(name).decode()
        except (KeyError, FileNotFoundError):
            raise CaptureError(missing) from None

    @property
    def size(self) -> int:
        """Bytes of the capture's files (compressed, for a zip)."""
        if self._prefix is not None:
            return self.path.stat().st_size
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())

    def frame(self, table: str) -> pd.DataFrame:
        """Every row of ``table`` (cached: tables do not change once written)."""
        if table not in self._frames:
            self._frames[table] = self._read_table(table)
        return self._frames[table]

    def _read_table(self, table: str) -> pd.DataFrame:
        import pyarrow as pa
        import pyarrow.parquet as pq

        entry = self.manifest.get("tables", {}).get(table)
        if entry is None:
            raise CaptureError(f"{self.path}: the manifest lists no table {table!r}")
        pieces = []
        for part in entry["parts"]:
            name = f"{TABLES}/{table}/{part['file']}"
            try:
                pieces.append(pq.read_table(pa.BufferReader(self._read_bytes(name))))
            except (KeyError, FileNotFoundError):
                raise CaptureError(f"{self.path}: {name} is missing", hint="the capture was changed after it was written") from None
        if not pieces:
            return pd.DataFrame()
        whole = pa.concat_tables(pieces, promote_options="permissive")
        return _as_written(whole.to_pandas(), whole.schema.pandas_metadata or {})


def _as_written(frame: pd.DataFrame, metadata: dict[str, Any]) -> pd.DataFrame:
    """``frame`` with the dtypes it was written with where pyarrow chose others: strings kept in an
    ``object`` column come back as pandas' string dtype unless told."""
    for column in metadata.get("columns", []):
        name = column.get("name")
        if column.get("numpy_type") == "object" and name in frame.columns and frame[name].dtype != object:
            frame[name] = frame[name].astype(object)
    return frame


def recorded(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame``, marked as read from a capture (``attrs["recorded"]``): plots then name no pid after
    this machine's processes."""
    frame.attrs["recorded"] = True
    return frame
