"""What a compiled BCC module contains: its functions and its maps.

BCC's Python leaves some of libbcc's calls without prototypes
(``bpf_table_name`` returns a pointer that ctypes would cut to an int), so
they are declared here once.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Any

__all__ = ["function_names", "table_names"]


@functools.lru_cache(maxsize=None)
def _lib() -> Any:
    from bcc.libbcc import lib

    lib.bpf_table_name.restype = ctypes.c_char_p
    lib.bpf_table_name.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong]
    lib.bpf_num_tables.restype = ctypes.c_ulonglong
    lib.bpf_num_tables.argtypes = [ctypes.c_void_p]
    return lib


def function_names(module: int | None) -> list[str]:
    """Names of the functions BCC compiled into ``module`` (a ``BPF.module`` handle)."""
    if not module:
        return []
    lib = _lib()
    return [lib.bpf_function_name(module, i).decode() for i in range(lib.bpf_num_functions(module))]


def table_names(module: int | None) -> list[str]:
    """Names of the maps ``module`` declares, in declaration order."""
    if not module:
        return []
    lib = _lib()
    return [lib.bpf_table_name(module, i).decode() for i in range(lib.bpf_num_tables(module))]
