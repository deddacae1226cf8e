"""Where the notebooks shipped beside bpfnb show each BPF helper at work.

A helper counts as shown in a ``%%bpf`` cell that calls it (cells tagged
``raises-exception``, which fail on purpose, or ``counter-example``, which
show a wrong way on purpose, do not count), under the nearest markdown
heading above the cell. BCC cells often call helpers through the
methods of BCC's map macros rather than by name; :data:`BCC_SPELLINGS` lists
the ones the notebooks use, and the libbpf macros that stand for a helper.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

__all__ = ["BCC_SPELLINGS", "NOTEBOOK_DIR", "helper_examples"]

#: The notebooks of a source checkout: ``notebooks/`` beside the ``bpfnb`` package. An installed
#: package has none beside it, and then no helper has an example.
NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: Spellings that call a helper without naming it: BCC's map methods (BCC rewrites
#: ``counts.increment(k)`` into ``bpf_map_lookup_elem`` + ``bpf_map_update_elem``) and libbpf's
#: macros. A method name is matched after a dot, a macro as written.
BCC_SPELLINGS: dict[str, tuple[str, ...]] = {
    ".increment(": ("bpf_map_lookup_elem", "bpf_map_update_elem"),
    ".lookup_or_try_init(": ("bpf_map_lookup_elem", "bpf_map_update_elem"),
    ".lookup(": ("bpf_map_lookup_elem",),
    ".update(": ("bpf_map_update_elem",),
    ".insert(": ("bpf_map_update_elem",),
    ".delete(": ("bpf_map_delete_elem",),
    ".perf_submit(": ("bpf_perf_event_output",),
    ".ringbuf_output(": ("bpf_ringbuf_output",),
    ".ringbuf_reserve(": ("bpf_ringbuf_reserve",),
    ".ringbuf_submit(": ("bpf_ringbuf_submit",),
    ".ringbuf_discard(": ("bpf_ringbuf_discard",),
    ".get_stackid(": ("bpf_get_stackid",),
    ".sk_storage_get(": ("bpf_sk_storage_get",),
    ".sk_redirect_map(": ("bpf_sk_redirect_map",),
    ".sk_redirect_hash(": ("bpf_sk_redirect_hash",),
    "BPF_CORE_READ(": ("bpf_probe_read_kernel",),
    "BPF_CORE_READ_STR_INTO(": ("bpf_probe_read_kernel_str",),
    "BPF_SEQ_PRINTF(": ("bpf_seq_printf",),
    "BPF_SNPRINTF(": ("bpf_snprintf",),
    "bpf_printk(": ("bpf_trace_printk",),
}

_CALL = re.compile(r"\b(bpf_\w+)\s*\(")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
#: Tags of cells that use helpers the wrong way on purpose.
_NOT_EXAMPLES = {"raises-exception", "counter-example"}
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)


def helper_examples(directory: Path | None = None) -> dict[str, str]:
    """``{helper: "NOTEBOOK § SECTION"}``: the first notebook and section that calls each helper.

    Notebooks are taken in name order (the order of the course); a helper no
    notebook calls is absent. No notebooks, or an unreadable one, just mean
    fewer examples.
    """
    directory = NOTEBOOK_DIR if directory is None else directory
    paths = sorted(directory.glob("*.ipynb")) if directory.is_dir() else []
    return dict(_examples(tuple((path, path.stat().st_mtime) for path in paths)))


@functools.lru_cache(maxsize=4)
def _examples(notebooks: tuple[tuple[Path, float], ...]) -> tuple[tuple[str, str], ...]:
    found: dict[str, str] = {}
    for path, _mtime in notebooks:
        for helper, section in _calls(path):
            found.setdefault(helper, f"{path.name} § {section}")
    return tuple(found.items())


def _calls(path: Path) -> list[tuple[str, str]]:
    """(helper, section) for each helper call of the notebook's working ``%%bpf`` cells, in order."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a notebook being saved, or not one at all
    calls = []
    section = path.stem
    for cell in cells:
        source = "".join(cell.get("source", ""))
        if cell.get("cell_type") == "markdown":
            headings = _HEADING.findall(source)
            if headings:
                section = headings[-1].replace("`", "")
        elif source.startswith("%%bpf") and not _NOT_EXAMPLES & set(cell.get("metadata", {}).get("tags", [])):
            calls += [(helper, section) for helper in _helpers_called(source)]
    return calls


def _helpers_called(source: str) -> list[str]:
    code = _COMMENT.sub("", source)
    names = _CALL.findall(code)
    for spelling, helpers in BCC_SPELLINGS.items():
        if spelling in code:
            names += helpers
    return names
