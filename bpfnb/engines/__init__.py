"""Engines: what turns a cell's text into programs in the kernel.

Each engine is a subpackage (``bcc``, ``libbpf``, ``bpftrace``) whose loaded
programs satisfy :class:`~bpfnb.engines.base.LoadedProgram`; :func:`load`
picks one by name. bpftrace scripts are never detected: they are asked for.
Nothing above this package knows which engine made a program.
"""

from __future__ import annotations

import re

from ..errors import ArgumentError
from .base import LoadedProgram, LoadOptions

__all__ = ["ENGINES", "detect_engine", "load"]

#: The engines ``engine=`` accepts.
ENGINES = ("bcc", "libbpf", "bpftrace")


_LIBBPF_MARKERS = re.compile(r'#\s*include\s*["<](?:vmlinux\.h|bpf/bpf_helpers\.h)[">]|\bSEC\s*\(')


def detect_engine(source: str) -> str:
    """The engine a cell's text is written for: libbpf if it includes ``vmlinux.h`` or libbpf's headers or uses ``SEC()``."""
    return "libbpf" if _LIBBPF_MARKERS.search(source) else "bcc"


def load(source: str, options: LoadOptions, *, engine: str | None = None) -> LoadedProgram:
    """Build ``source`` with ``engine`` (by default the one its text is written for)."""
    engine = engine or detect_engine(source)
    if engine == "bcc":
        from .bcc.program import BccProgram

        return BccProgram(source, options)
    if engine == "libbpf":
        from .libbpf.program import LibbpfProgram

        return LibbpfProgram(source, options)
    if engine == "bpftrace":
        from .bpftrace.program import BpftraceProgram

        return BpftraceProgram(source, options)
    raise ArgumentError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
