"""The kernel's uapi header ``linux/bpf.h``: where the newest copy is, and the helpers it numbers.

The helper catalog (:mod:`bpfnb.tools.helpers`) reads the header's documentation;
the engines only need the helpers' names, to tell a misspelled helper from a
function the cell forgot to define.
"""

from __future__ import annotations

import functools
import glob
import os
import re

from ..errors import SetupError

__all__ = ["find_header", "helper_ids", "helper_names", "read_header"]


def find_header() -> str:
    """Path of the newest ``linux/bpf.h`` on the machine (the one with most helpers).

    Candidates are linux-libc-dev's ``/usr/include/linux/bpf.h`` and the uapi
    copies in the kernel header trees under ``/usr/src``.
    """
    candidates = ["/usr/include/linux/bpf.h", *sorted(glob.glob("/usr/src/*/include/uapi/linux/bpf.h"))]
    found = [path for path in candidates if os.path.exists(path)]
    if not found:
        raise SetupError(
            "no linux/bpf.h on this machine",
            hint="Install the uapi headers: `apt-get install linux-libc-dev`.",
        )
    return max(found, key=lambda path: (len(helper_ids(read_header(path))), path.startswith("/usr/src")))


def read_header(path: str) -> str:
    """The text of a header file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def helper_ids(header: str) -> dict[str, int]:
    """``{name: BPF_FUNC id}`` from the header's ``__BPF_FUNC_MAPPER`` list.

    Kernels up to 6.1 number helpers by position (``FN(name)``); newer headers
    spell the number out (``FN(name, 42, ##ctx)``) in ``___BPF_FUNC_MAPPER``.
    """
    match = re.search(r"#define ___?BPF_FUNC_MAPPER\(FN(?:, ctx\.\.\.)?\)\s*\\\n(.*?)\n\s*/\* \*/", header, re.S)
    if not match:
        return {}
    ids = {}
    for position, entry in enumerate(re.finditer(r"FN\((\w+)(?:,\s*(\d+))?", match.group(1))):
        name, number = entry.groups()
        ids[name] = int(number) if number is not None else position
    return ids


@functools.lru_cache(maxsize=1)
def helper_names() -> tuple[str, ...]:
    """``bpf_<name>`` of every helper the newest header numbers; empty when there is no header."""
    try:
        header = read_header(find_header())
    except SetupError:
        return ()
    return tuple(f"bpf_{name}" for name, number in helper_ids(header).items() if number)
