"""Record notebooks 01-05 into the captures they fall back on without root: notebooks/captures/<notebook>.zip.

Run as root from the repository, after ``make test`` or ``make lab`` has
installed the "eBPF (bpfnb)" kernel::

    .venv/bin/python notebooks/captures/make_captures.py            # all five
    .venv/bin/python notebooks/captures/make_captures.py 03 05      # some of them

Each notebook runs headless on that kernel, exactly as committed, between a
``%bpf record captures/<notebook>`` cell and a ``%bpf record stop`` cell
added for the run; the capture directory is then zipped and removed. The
notebook's own ``%bpf replay ... --fallback`` cell stays live here, since
this kernel can load programs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE.parent
sys.path.insert(0, str(NOTEBOOKS.parent))

import bpfnb  # noqa: E402
from bpfnb.tools.kernelspec import KERNEL_NAME  # noqa: E402

RECORDED = ("01", "02", "03", "04", "05")


def record(notebook: Path) -> Path:
    """Run ``notebook`` with a recording around it; return the zip of the capture."""
    stem = notebook.stem
    directory, archive = HERE / stem, HERE / f"{stem}.zip"
    shutil.rmtree(directory, ignore_errors=True)
    archive.unlink(missing_ok=True)
    nb = nbformat.read(notebook, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"%bpf record captures/{stem}"))
    nb.cells.append(nbformat.v4.new_code_cell("%bpf record stop"))
    NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=180, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    made = bpfnb.load(directory).zip(archive)
    shutil.rmtree(directory)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", default=RECORDED, help="notebook numbers (default: 01 to 05)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("recording loads BPF programs: run this as root")
    for number in args.which:
        (notebook,) = NOTEBOOKS.glob(f"{number}-*.ipynb")
        made = record(notebook)
        capture = bpfnb.load(made)
        rows = sum(entry["rows"] for entry in capture.files.manifest["tables"].values())
        print(f"{made.relative_to(NOTEBOOKS.parent)}: {made.stat().st_size / 1024:.0f} KiB, {rows:,} rows, "
              f"{capture.duration.total_seconds():.1f} s, programs {', '.join(capture)}")


if __name__ == "__main__":
    main()
