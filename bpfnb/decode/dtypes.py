"""C types to numpy dtypes with the exact C layout, and their short C names.

The first step of the pipeline :mod:`bpfnb.decode.columns` describes: ctypes
types (from BCC's table descriptions, a parsed struct, or BTF) become numpy
structured dtypes whose offsets, padding and itemsize are the C ones.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from ..errors import DecodeError

__all__ = ["BITFIELDS", "PAD_PREFIX", "array_shape", "c_type_name", "dtype_of"]

#: Metadata key of a storage field that holds C bit-fields: ``(name, shift, width, signed)`` each.
BITFIELDS = "bitfields"
#: Fields named so are padding: their bytes stay in the itemsize, not in the columns.
PAD_PREFIX = "__pad"


def array_shape(ctype: type) -> tuple[type, int]:
    """The element type and length of a ctypes array type."""
    return getattr(ctype, "_type_"), int(getattr(ctype, "_length_"))


def dtype_of(ctype: type) -> np.dtype:
    """The numpy dtype with the exact memory layout of a ctypes type.

    Parameters
    ----------
    ctype
        A ctypes scalar, array, ``Structure`` or ``Union`` class, such as BCC's
        ``table.Key`` / ``table.Leaf`` or ``BPF._decode_table_type(desc)``.

    Returns
    -------
    numpy.dtype
        Offsets, itemsize and alignment padding follow ctypes (hence C);
        BCC's explicit ``__pad_*`` fields are left out (their bytes stay in
        the itemsize). Bit-fields share one unsigned storage field whose dtype
        metadata lists them; :func:`columns_of` expands them.
    """
    return _dtype_of(ctype)


@functools.lru_cache(maxsize=256)
def _dtype_of(ctype: type) -> np.dtype:
    if issubclass(ctype, (ctypes.Structure, ctypes.Union)):
        return _struct_dtype(ctype)
    if issubclass(ctype, ctypes.Array):
        element, length = array_shape(ctype)
        if element is ctypes.c_char:
            return np.dtype(f"S{length}")
        return np.dtype((_dtype_of(element), (length,)))
    try:
        return np.dtype(ctype)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"no numpy equivalent for the C type {ctype.__name__}") from exc


def _struct_dtype(ctype: type) -> np.dtype:
    names: list[str] = []
    formats: list[np.dtype] = []
    offsets: list[int] = []
    bits: dict[int, list[tuple[str, int, int, bool]]] = {}
    bit_types: dict[int, type] = {}
    for field in getattr(ctype, "_fields_"):
        name, ftype = field[0], field[1]
        descr = getattr(ctype, name)
        if len(field) == 3:
            # CPython < 3.14 packs bit-field geometry into size: width << 16 | bit offset.
            width = getattr(descr, "bit_size", descr.size >> 16)
            shift = getattr(descr, "bit_offset", descr.size & 0xFFFF)
            signed = np.dtype(ftype).kind == "i"
            bits.setdefault(descr.offset, []).append((name, shift, width, signed))
            bit_types[descr.offset] = ftype
            continue
        if name.startswith(PAD_PREFIX):
            continue
        names.append(name)
        formats.append(_dtype_of(ftype))
        offsets.append(descr.offset)
    for offset, members in bits.items():
        storage = np.dtype(f"u{ctypes.sizeof(bit_types[offset])}")
        names.append(f"__bits{offset}")
        formats.append(np.dtype(storage, metadata={BITFIELDS: tuple(members)}))
        offsets.append(offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": ctypes.sizeof(ctype)}
    )


_C_SCALARS = {
    "b": "s8", "B": "u8", "h": "s16", "H": "u16", "i": "s32", "I": "u32",
    "l": "s64", "L": "u64", "q": "s64", "Q": "u64", "?": "bool",
    "f": "float", "d": "double", "g": "long double", "c": "char",
}  # fmt: skip


def c_type_name(ctype: type | None) -> str:
    """A short C-like name for a ctypes type: ``u32``, ``char[16]``, ``struct key_t``."""
    if ctype is None:
        return "none"
    if issubclass(ctype, ctypes.Array):
        element, length = array_shape(ctype)
        return f"{c_type_name(element)}[{length}]"
    if issubclass(ctype, ctypes.Union):
        return f"union {ctype.__name__}"
    if issubclass(ctype, ctypes.Structure):
        return f"struct {ctype.__name__}"
    return _C_SCALARS.get(getattr(ctype, "_type_", ""), ctype.__name__)
