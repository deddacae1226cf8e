"""What a compiled BCC module contains: its functions, its maps with their C types, its event structs.

BCC's Python leaves some of libbcc's calls without prototypes
(``bpf_table_name`` returns a pointer that ctypes would cut to an int), so
they are declared here once. Maps are described from the module and the
kernel without building BCC's own table classes, so map types BCC 0.26
cannot build (task/sk/inode storage, sockmap...) still get a :class:`MapSpec`.
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
from typing import TYPE_CHECKING, Any

from ...decode.cstructs import ParseError, SourceTypes, ctype_of
from ...errors import DecodeError
from ...kernel.libbpf import map_info
from ..base import MapSpec

if TYPE_CHECKING:
    import bcc

__all__ = ["describe_map", "event_struct", "function_names", "named_type", "table_names"]


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


def table_fd(module: int | None, name: str) -> int:
    """The fd of map ``name`` of ``module`` (-1 if it has none); BCC's Python tables do not cover every map type."""
    return int(_lib().bpf_table_fd(module, name.encode())) if module else -1


def describe_map(bpf: bcc.BPF, name: str, *, source: str) -> MapSpec:
    """A map's type, fd and C types, from BCC's module and the kernel; ``KeyError`` if there is none."""
    from bcc import BPF

    lib = _lib()
    module, raw = bpf.module, name.encode()
    fd = table_fd(module, name)
    if fd < 0:
        raise KeyError(name)
    type_id = lib.bpf_table_type_id(module, lib.bpf_table_id(module, raw))

    def ctype(desc: bytes | None) -> type | None:
        return BPF._decode_table_type(json.loads(desc)) if desc else None

    info = map_info(fd)
    return MapSpec(
        name=name,
        type_id=type_id,
        fd=fd,
        key_type=ctype(lib.bpf_table_key_desc(module, raw)),
        value_type=ctype(lib.bpf_table_leaf_desc(module, raw)),
        max_entries=info.max_entries,
        key_size=info.key_size,
        value_size=info.value_size,
        map_flags=info.map_flags,
        histogram=_is_histogram(source, name),
    )


def _is_histogram(source: str, name: str) -> bool:
    name = re.escape(name)
    pattern = rf'BPF_HISTOGRAM\s*\(\s*{name}\b|BPF_(?:F_)?TABLE\s*\(\s*"histogram"[^;]*?,\s*{name}\s*[,)]'
    return re.search(pattern, source) is not None


def named_type(source: str, type_name: str) -> type:
    """The ctypes type of ``struct x``, ``union x`` or a typedef declared in ``source``."""
    types = SourceTypes(source)
    found = types.records.get(type_name.strip()) or types.typedefs.get(type_name.strip())
    if found is None:
        known = ", ".join([*types.records, *types.typedefs]) or "none"
        raise DecodeError(f"the program declares no type {type_name!r}", hint=f"its types: {known}")
    return found


def event_struct(bpf: bcc.BPF, name: str, *, source: str) -> type:
    """The C struct a program sends to buffer ``name``, as a ctypes class.

    BCC records the field names and type names of the struct passed to the
    last ``perf_submit``/``ringbuf_output``/``ringbuf_reserve`` of ``name``.
    The struct with those field names declared in ``source`` gives the exact
    layout (nested structs, unions, typedefs, bit-fields, packing); the type
    names alone are enough for flat structs of plain types.

    Raises
    ------
    DecodeError
        The program sends nothing BCC could see, or a field's type cannot be
        told; pass ``type="struct ..."`` or ``event_type=`` a ctypes class then.
    """
    from bcc.libbcc import lib

    key = name.encode()
    described = [
        lib.bpf_perf_event_field(bpf.module, key, i).decode().partition("#")
        for i in range(lib.bpf_perf_event_fields(bpf.module, key))
    ]
    if not described:
        raise DecodeError(
            f"BCC saw no event struct sent to {name!r}",
            hint='send a struct with perf_submit/ringbuf_output, or pass type="struct <name>"',
        )
    declared = SourceTypes(source).find([field for field, _, _ in described])
    if declared is not None:
        return declared
    try:
        fields = [(field, ctype_of(ctype)) for field, _, ctype in described]
    except ParseError as exc:
        raise DecodeError(
            f"cannot decode the events sent to {name!r}: {exc}",
            hint="pass event_type=<ctypes Structure> describing the event, e.g. built with ctypes",
        ) from None
    return type(f"{name}_event", (ctypes.Structure,), {"_fields_": fields})
