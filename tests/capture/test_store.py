"""A capture's files without a kernel: parts and manifest written so that a reader never sees half of anything."""

from __future__ import annotations

import json
import os
import stat
import zipfile

import numpy as np
import pandas as pd
import pytest

from bpfnb import ArgumentError, CaptureError
from bpfnb.capture.files import CaptureFiles
from bpfnb.capture.layout import MANIFEST, table_name
from bpfnb.capture.store import CaptureStore


def rows(first: int, count: int) -> pd.DataFrame:
    seq = np.arange(first, first + count, dtype=np.uint64)
    return pd.DataFrame(
        {
            "time": pd.to_datetime(seq.astype(np.int64), utc=True),
            "seq": seq,
            "comm": pd.Series([f"c{i % 7}" for i in range(first, first + count)], dtype="str"),
            "stack": pd.Series([np.arange(i % 3, dtype=np.uint64) for i in range(first, first + count)], dtype=object),
        }
    )


def test_a_table_reads_back_as_written_across_parts(tmp_path):
    store = CaptureStore(tmp_path / "c")
    store.append("p/streams/events", rows(0, 100))
    store.append("p/streams/events", rows(100, 50))
    store.commit({"name": "c"})
    frame = CaptureFiles(tmp_path / "c").frame("p/streams/events")
    pd.testing.assert_frame_equal(frame, rows(0, 150))
    assert CaptureFiles(tmp_path / "c").manifest["tables"]["p/streams/events"]["rows"] == 150


def test_only_parts_the_manifest_lists_are_read(tmp_path):
    store = CaptureStore(tmp_path / "c")
    with pytest.raises(CaptureError, match="has no manifest.json"):
        CaptureFiles(tmp_path / "c")
    store.append("t", rows(0, 10))
    store.commit({"name": "c"})
    # A writer killed after writing a part, before the manifest that lists it.
    store.append("t", rows(10, 10))
    (tmp_path / "c" / "tables" / "t" / ".part-00000009.parquet.123.tmp").write_bytes(b"half a part")
    pd.testing.assert_frame_equal(CaptureFiles(tmp_path / "c").frame("t"), rows(0, 10))


def test_files_are_readable_by_others_as_any_new_file(tmp_path):
    before = os.umask(0o022)
    try:
        store = CaptureStore(tmp_path / "c")
        store.append("t", rows(0, 1))
        store.commit({"name": "c"})
    finally:
        os.umask(before)
    for path in (tmp_path / "c").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_rotation_drops_the_oldest_parts_first_and_counts_their_rows(tmp_path):
    store = CaptureStore(tmp_path / "c")
    for first in range(0, 50_000, 5_000):
        store.append("events", rows(first, 5_000))
        store.append("map", rows(first, 10))
    whole = store.bytes
    store.rotate(whole // 2)
    store.commit({"name": "c"})
    assert store.bytes <= whole // 2
    files = CaptureFiles(tmp_path / "c")
    events, kept = files.frame("events"), files.manifest["tables"]["events"]
    # The newest rows stay, without a gap; the rest are counted.
    assert events["seq"].tolist() == list(range(50_000 - len(events), 50_000))
    assert kept["rows"] == len(events) and kept["rotated_rows"] == 50_000 - len(events) > 0
    left = {p.name for p in (tmp_path / "c" / "tables" / "events").iterdir()}
    assert left == {part["file"] for part in kept["parts"]}
    # Each table keeps its newest part, whatever the limit.
    store.rotate(1)
    store.commit({"name": "c"})
    assert [len(e["parts"]) for e in store.tables.values()] == [1, 1]


def test_compaction_joins_parts_and_keeps_every_row(tmp_path):
    store = CaptureStore(tmp_path / "c")
    for first in range(0, 1000, 100):
        store.append("events", rows(first, 100))
    store.append("events", rows(1000, 0))  # an empty part carries the columns too
    store.compact()
    store.commit({"name": "c"})
    assert len(store.tables["events"]["parts"]) == 1
    assert len(list((tmp_path / "c" / "tables" / "events").iterdir())) == 1
    pd.testing.assert_frame_equal(CaptureFiles(tmp_path / "c").frame("events"), rows(0, 1000))


@pytest.mark.parametrize("inside", ["c/", ""], ids=["directory-zipped", "files-zipped"])
def test_a_zip_reads_as_the_directory(tmp_path, inside):
    store = CaptureStore(tmp_path / "c")
    store.append(table_name("my prog", "streams", "events"), rows(0, 20))
    store.commit({"name": "c"})
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for path in (tmp_path / "c").rglob("*"):
            z.write(path, inside + str(path.relative_to(tmp_path / "c")))
    files = CaptureFiles(archive)
    assert files.manifest["name"] == "c" and files.size == archive.stat().st_size
    pd.testing.assert_frame_equal(files.frame("my_prog/streams/events"), rows(0, 20))


def test_what_is_not_a_capture_says_so(tmp_path):
    with pytest.raises(CaptureError, match="no capture at"):
        CaptureFiles(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("hello")
    with pytest.raises(CaptureError, match="neither a capture directory nor a zip"):
        CaptureFiles(tmp_path / "file.txt")
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as z:
        z.writestr("readme.txt", "no manifest here")
    with pytest.raises(CaptureError, match="holds no manifest.json"):
        CaptureFiles(tmp_path / "empty.zip")
    (tmp_path / "future").mkdir()
    (tmp_path / "future" / MANIFEST).write_text(json.dumps({"format": "bpfnb-capture", "version": 99}))
    with pytest.raises(CaptureError, match="not a bpfnb capture of version 1"):
        CaptureFiles(tmp_path / "future")
    (tmp_path / "future" / MANIFEST).write_text("{not json")
    with pytest.raises(CaptureError, match="is not JSON"):
        CaptureFiles(tmp_path / "future")


def test_a_missing_part_and_a_taken_directory_are_explained(tmp_path):
    store = CaptureStore(tmp_path / "c")
    store.append("t", rows(0, 5))
    store.commit({"name": "c"})
    next((tmp_path / "c" / "tables" / "t").iterdir()).unlink()
    with pytest.raises(CaptureError, match="is missing"):
        CaptureFiles(tmp_path / "c").frame("t")
    with pytest.raises(CaptureError, match="lists no table 'u'"):
        CaptureFiles(tmp_path / "c").frame("u")
    with pytest.raises(ArgumentError, match="already exists"):
        CaptureStore(tmp_path / "c")
    assert table_name("a/b", "..", "x y") == "a_b/_/x_y"
