"""The captures notebooks 01-05 fall back on: there, small, and holding what their cells load."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import bpfnb

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
CAPTURES = sorted((NOTEBOOKS / "captures").glob("*.zip"))


def test_notebooks_01_to_05_ship_a_capture():
    assert [p.name[:2] for p in CAPTURES] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("archive", CAPTURES, ids=lambda p: p.stem)
def test_a_shipped_capture_holds_its_notebooks_programs(archive):
    assert archive.stat().st_size < 256 * 1024
    nb = nbformat.read(NOTEBOOKS / f"{archive.stem}.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert f"%bpf replay captures/{archive.name} --fallback" in code
    cells = {m.group(1) for source in code if (m := re.match(r"%%bpf (\w+)", source))}
    capture = bpfnb.load(archive)
    assert capture.state == "recorded" and set(capture) == cells
    # The values the notebook keeps with bpfnb.remember() are in it.
    kept = {m.group(1) for source in code for m in re.finditer(r'bpfnb\.remember\("(\w+)"', source)}
    assert set(capture.notes) == kept
    for program in capture.programs:
        assert program.source.strip() in "\n".join(code)
