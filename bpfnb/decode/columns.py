"""From C types to numpy records to DataFrame columns, without BCC and without root.

The pipeline every reader of kernel data shares (maps, ring and perf buffers)::

    ctypes type (BCC's table.Key / table.Leaf, or a struct class)
        --dtype_of-->   numpy structured dtype with the exact C offsets
        --np.frombuffer / preallocated arrays filled by the kernel-->  records
        --to_frame-->   pandas DataFrame, one column per field

Column naming rules (:func:`columns_of`, :func:`to_frame`):

- a scalar record is one column named after its part (``key``, ``value``);
- struct fields are columns named as in C; nested structs flatten as
  ``outer.inner``; anonymous struct/union members flatten without a prefix;
- a field name present in more than one part is prefixed with the part
  (``key.pid`` and ``value.pid``);
- ``char[N]`` becomes ``str``, cut at the first NUL and decoded as UTF-8 with
  invalid bytes replaced; a single ``char`` becomes a one-character ``str``;
- every other array becomes one column whose cells are numpy arrays;
- C bit-fields become integer columns; padding (BCC's ``__pad_*``) is dropped.

Decoders (:func:`apply_decoders`, ``decode={"saddr": "ipv4"}``) put the
readable value under the column's name and keep the raw value right after it
as ``<name>_raw``. Names: ``ipv4`` and ``ipv6`` (a u32 / u8[4] or u8[16] /
__int128 in network byte order, as the kernel keeps addresses), ``ksym``
(kernel address -> function), ``errno`` (2 or -2 -> ``ENOENT``),
``syscall`` (number -> name on this architecture), ``boottime`` (ns from
``bpf_ktime_get_boot_ns``) and ``monotonic`` (ns from ``bpf_ktime_get_ns``)
-> UTC timestamps, ``hex``; a ``dict`` maps values to names (an enum; values
it lacks show as numbers); a callable takes the raw numpy array and returns
the decoded column. Named decoders give pandas' string dtype.
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import functools
import ipaddress
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ArgumentError, DecodeError

__all__ = [
    "DECODERS",
    "Decoder",
    "apply_decoders",
    "boot_to_wall",
    "c_type_name",
    "columns_of",
    "dtype_of",
    "strings_from_chars",
    "to_frame",
    "utc_times",
]

#: What ``decode={column: ...}`` accepts: a decoder name, a value->name mapping
#: or a function of the raw numpy array.
Decoder = Union[str, Mapping[Any, str], Callable[[np.ndarray], Any]]

_BITFIELDS = "bitfields"
_PAD_PREFIX = "__pad"
_ANON_PREFIX = "__anon"


# --------------------------------------------------------------------------- dtypes


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
        if ctype._type_ is ctypes.c_char:
            return np.dtype(f"S{ctype._length_}")
        element = _dtype_of(ctype._type_)
        return np.dtype((element, (ctype._length_,)))
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
    for field in ctype._fields_:
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
        if name.startswith(_PAD_PREFIX):
            continue
        names.append(name)
        formats.append(_dtype_of(ftype))
        offsets.append(descr.offset)
    for offset, members in bits.items():
        storage = np.dtype(f"u{ctypes.sizeof(bit_types[offset])}")
        names.append(f"__bits{offset}")
        formats.append(np.dtype(storage, metadata={_BITFIELDS: tuple(members)}))
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
        return f"{c_type_name(ctype._type_)}[{ctype._length_}]"
    if issubclass(ctype, ctypes.Union):
        return f"union {ctype.__name__}"
    if issubclass(ctype, ctypes.Structure):
        return f"struct {ctype.__name__}"
    return _C_SCALARS.get(getattr(ctype, "_type_", ""), ctype.__name__)


# --------------------------------------------------------------------------- columns


def strings_from_chars(chars: np.ndarray) -> pd.Series | pd.api.extensions.ExtensionArray:
    """Decode a ``char[N]`` column (numpy ``S<N>``) to strings, vectorized.

    Each value is cut at its first NUL (bytes after it are garbage in C) and
    decoded as UTF-8 with invalid bytes replaced. The result uses pandas'
    default string dtype.
    """
    chars = np.ascontiguousarray(chars)
    n, width = len(chars), chars.dtype.itemsize
    raw = chars.view(np.uint8).reshape(n, width)
    lengths, clean = _first_nul(raw)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # Only NULs after the first NUL (the usual case): dropping every NUL keeps the text.
    flat = raw.reshape(-1)
    data = flat[flat != 0] if clean else raw[np.arange(width) < lengths[:, None]]
    large = offsets[-1] >= 2**31
    buffers = [None, pa.py_buffer(offsets if large else offsets.astype(np.int32)), pa.py_buffer(data)]
    if not len(data) or data.max() < 0x80:  # ASCII is valid UTF-8: no need for arrow to check
        return _arrow_strings_to_pandas(pa.Array.from_buffers(pa.large_string() if large else pa.string(), n, buffers))
    binary = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), n, buffers)
    try:
        strings = binary.cast(pa.large_string() if large else pa.string())
    except pa.ArrowInvalid:
        # Rare (non-UTF-8 bytes): decode each distinct value once in Python.
        codes, uniques = pd.factorize(np.asarray(binary.to_pylist(), dtype=object))
        texts = [u.decode("utf-8", "replace") for u in uniques]
        strings = pa.array(texts, pa.string()).take(pa.array(codes))
    return _arrow_strings_to_pandas(strings)


def _first_nul(raw: np.ndarray) -> tuple[np.ndarray, bool]:
    """Per row of bytes, the index of its first NUL (the width when none), and
    whether every byte after each row's first NUL is NUL too.

    Rows are read a machine word at a time: for a word ``x``,
    ``~(((x & 0x7f..) + 0x7f..) | x | 0x7f..)`` has the high bit of exactly its
    zero bytes set, so the lowest set bit gives the first NUL of the word and
    the bit count the number of NULs, with no per-byte or per-row Python work.
    """
    n, width = raw.shape
    if sys.byteorder != "little" or not hasattr(np, "bitwise_count"):
        nul = raw == 0
        lengths = np.where(nul.any(axis=1), nul.argmax(axis=1), width)
        return lengths, bool((nul.sum(axis=1) == width - lengths).all())
    word = next(size for size in (8, 4, 2, 1) if width % size == 0)
    kind = np.dtype(f"u{word}").type
    words = raw.view(kind)
    low7 = kind(int("7f" * word, 16))
    zeros = ~(((words & low7) + low7) | words | low7)
    # Lowest set bit minus one has 8*b + 7 ones for a first NUL at byte b; 8*word when none.
    first = np.bitwise_count((zeros & (~zeros + kind(1))) - kind(1)) >> 3
    lengths = np.full(n, width, dtype=np.int64)
    nuls = np.zeros(n, dtype=np.int64)
    for k in reversed(range(width // word)):
        lengths = np.where(first[:, k] < word, k * word + first[:, k], lengths)
        nuls += np.bitwise_count(zeros[:, k])
    return lengths, bool((nuls == width - lengths).all())


_DEFAULT_STR = pd.Series([""]).dtype


def _arrow_strings_to_pandas(strings: pa.Array) -> Any:
    if isinstance(_DEFAULT_STR, pd.StringDtype):
        return strings.to_pandas(types_mapper={pa.string(): _DEFAULT_STR, pa.large_string(): _DEFAULT_STR}.get)
    return strings.to_pandas()


def columns_of(records: np.ndarray, *, name: str = "value") -> dict[str, Any]:
    """Flatten an array of records into named columns, following the module's rules.

    Parameters
    ----------
    records
        A one-dimensional numpy array, structured or scalar.
    name
        The column name of a scalar record.
    """
    out: dict[str, Any] = {}
    if records.dtype.names is None:
        out[name] = _column(records)
    else:
        _flatten(records, "", out)
    return out


def _flatten(records: np.ndarray, prefix: str, out: dict[str, Any]) -> None:
    for field in records.dtype.names or ():
        sub = records[field]
        bitfields = (sub.dtype.metadata or {}).get(_BITFIELDS)
        if bitfields:
            for bname, shift, width, signed in bitfields:
                out[prefix + bname] = _bitfield(sub, shift, width, signed)
        elif sub.dtype.names is not None and sub.ndim == 1:
            inner = prefix if field.startswith(_ANON_PREFIX) else f"{prefix}{field}."
            _flatten(sub, inner, out)
        else:
            out[prefix + field] = _column(sub)


def _bitfield(storage: np.ndarray, shift: int, width: int, signed: bool) -> np.ndarray:
    value = (storage.astype(np.int64) >> shift) & ((1 << width) - 1)
    if signed:
        value = np.where(value >= 1 << (width - 1), value - (1 << width), value)
    return value


def _column(values: np.ndarray) -> Any:
    if values.dtype.kind == "S" and values.ndim == 1:
        return strings_from_chars(values)
    if values.ndim > 1:
        cells = np.empty(len(values), dtype=object)
        cells[:] = list(np.ascontiguousarray(values))
        return cells
    return values


def to_frame(
    parts: Mapping[str, np.ndarray | Mapping[str, Any]],
    *,
    decode: Mapping[str, Decoder] | None = None,
    index: Any = None,
) -> pd.DataFrame:
    """Build a DataFrame from named record arrays of equal length.

    Parameters
    ----------
    parts
        E.g. ``{"key": keys, "value": values}``; each record array is
        flattened with :func:`columns_of`, a mapping is taken as columns
        already flattened. A column name found in two parts is prefixed with
        its part's name and a dot.
    decode
        Column decoders, see :func:`apply_decoders`.
    index
        Passed to the DataFrame.
    """
    flat = {
        part: records if isinstance(records, Mapping) else columns_of(records, name=part)
        for part, records in parts.items()
    }
    seen: dict[str, int] = {}
    for columns in flat.values():
        for column in columns:
            seen[column] = seen.get(column, 0) + 1
    merged: dict[str, Any] = {}
    for part, columns in flat.items():
        for column, values in columns.items():
            merged[f"{part}.{column}" if seen[column] > 1 else column] = values
    frame = pd.DataFrame(merged, index=index, copy=False)
    if not merged:
        frame = pd.DataFrame(index=index if index is not None else pd.RangeIndex(0))
    return apply_decoders(frame, decode) if decode else frame


# --------------------------------------------------------------------------- decoders


def apply_decoders(frame: pd.DataFrame, decode: Mapping[str, Decoder]) -> pd.DataFrame:
    """Replace each named column by its decoded value and keep the raw one as ``<name>_raw``.

    Raises
    ------
    DecodeError
        A column is missing, a decoder name is unknown, or values do not fit it.
    """
    frame = frame.copy(deep=False)
    for column, decoder in decode.items():
        if column not in frame.columns:
            raise DecodeError(
                f"cannot decode {column!r}: no such column",
                hint=f"columns are: {', '.join(map(str, frame.columns))}",
            )
        raw = frame[column].to_numpy()
        decoded = _decoder(decoder)(raw)
        position = frame.columns.get_loc(column)
        values = decoded.array if isinstance(decoded, (pd.Series, pd.Index)) else decoded
        frame[column] = pd.Series(values, index=frame.index)
        frame.insert(position + 1, f"{column}_raw", raw)
    return frame


def _decoder(decoder: Decoder) -> Callable[[np.ndarray], Any]:
    if callable(decoder):
        return decoder
    if isinstance(decoder, Mapping):
        return functools.partial(_enum, decoder)
    try:
        return DECODERS[decoder]
    except KeyError:
        raise DecodeError(
            f"unknown decoder {decoder!r}",
            hint=f"use one of {', '.join(sorted(DECODERS))}, a dict of names, or a function",
        ) from None


def _by_unique(values: np.ndarray, convert: Callable[[Any], str]) -> Any:
    """Names from a per-value Python function called once per distinct value
    (addresses, errnos and symbols repeat), as a column of pandas' string dtype."""
    uniques, inverse = np.unique(values, return_inverse=True, axis=0 if values.ndim > 1 else None)
    names = pa.array([convert(u) for u in uniques], pa.string())
    return _arrow_strings_to_pandas(names.take(pa.array(inverse.reshape(-1))))


def _address_bytes(values: np.ndarray, size: int) -> np.ndarray:
    """Rows of ``size`` bytes as they lie in memory (network order for addresses)."""
    if values.dtype == object:
        values = np.stack(list(values)) if len(values) else np.zeros((0, size), np.uint8)
    values = np.ascontiguousarray(values)
    width = values.dtype.itemsize * int(np.prod(values.shape[1:], dtype=np.int64))
    if width != size:
        raise DecodeError(f"an address needs {size} bytes per value, this column has {width}")
    return values.view(np.uint8).reshape(len(values), size)


def _ipv4(values: np.ndarray) -> Any:
    return _by_unique(_address_bytes(values, 4), lambda b: str(ipaddress.IPv4Address(bytes(b))))


def _ipv6(values: np.ndarray) -> Any:
    return _by_unique(_address_bytes(values, 16), lambda b: str(ipaddress.IPv6Address(bytes(b))))


def _errno_name(value: Any) -> str:
    number = abs(int(value))
    return errno_codes.errorcode.get(number, str(int(value))) if number else "0"


def _errno(values: np.ndarray) -> Any:
    return _by_unique(np.asarray(values, dtype=np.int64), _errno_name)


def _enum(names: Mapping[Any, str], values: np.ndarray) -> Any:
    return _by_unique(np.asarray(values), lambda v: names.get(v.item(), str(v.item())))


def _hex(values: np.ndarray) -> Any:
    return _by_unique(np.asarray(values), lambda v: hex(int(v)))


def _ksym(values: np.ndarray) -> Any:
    from ..kernel.symbols import kernel_symbols

    names = kernel_symbols().names(np.asarray(values, dtype=np.uint64))
    return _arrow_strings_to_pandas(pa.array(names, pa.string()))


def _syscall(values: np.ndarray) -> Any:
    from ..kernel.symbols import syscall_name

    return _by_unique(np.asarray(values, dtype=np.int64), lambda v: syscall_name(int(v)))


def _clock_offset_ns(clock: int) -> int:
    """Wall-clock ns minus ``clock`` ns, read as a tight sandwich of three readings."""
    best: tuple[int, int] | None = None
    for _ in range(5):
        before = time.time_ns()
        reading = time.clock_gettime_ns(clock)
        after = time.time_ns()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) // 2 - reading)
    assert best is not None
    return best[1]


def boot_to_wall(ns: np.ndarray, *, clock: str = "boottime") -> pd.DatetimeIndex:
    """Convert kernel timestamps in ns to UTC wall-clock times.

    Parameters
    ----------
    ns
        ``bpf_ktime_get_boot_ns()`` values (``clock="boottime"``) or
        ``bpf_ktime_get_ns()`` values (``clock="monotonic"``).
    """
    clocks = {"boottime": time.CLOCK_BOOTTIME, "monotonic": time.CLOCK_MONOTONIC}
    if clock not in clocks:
        raise ArgumentError(f"clock must be one of {sorted(clocks)}, not {clock!r}")
    return utc_times(np.asarray(ns, dtype=np.int64) + _clock_offset_ns(clocks[clock]))


def utc_times(epoch_ns: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps from ns since the epoch (5x faster than ``pd.to_datetime(..., utc=True)``)."""
    return pd.DatetimeIndex(np.asarray(epoch_ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


#: Decoders by name, for ``decode={column: name}``.
DECODERS: dict[str, Callable[[np.ndarray], Any]] = {
    "boottime": functools.partial(boot_to_wall, clock="boottime"),
    "errno": _errno,
    "hex": _hex,
    "ipv4": _ipv4,
    "ipv6": _ipv6,
    "ksym": _ksym,
    "monotonic": functools.partial(boot_to_wall, clock="monotonic"),
    "syscall": _syscall,
}
