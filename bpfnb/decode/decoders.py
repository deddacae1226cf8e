"""Decoders (:func:`apply_decoders`, ``decode={"saddr": "ipv4"}``) put the
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

import errno as errno_codes
import functools
import ipaddress
import time
from collections.abc import Callable, Mapping
from typing import Any, Union

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import ArgumentError, DecodeError
from .strings import arrow_strings_to_pandas

__all__ = [
    "DECODERS",
    "Decoder",
    "apply_decoders",
    "boot_to_wall",
    "clock_offset_ns",
    "decoded_columns",
    "recorded_decoders",
    "utc_times",
    "with_decoded",
]

#: What ``decode={column: ...}`` accepts: a decoder name, a value->name mapping
#: or a function of the raw numpy array.
Decoder = Union[str, Mapping[Any, str], Callable[[np.ndarray], Any]]


#: Decoders by name: what ``named`` gives :func:`apply_decoders` (``DECODERS``, or a recording's).
Named = Mapping[str, Callable[[np.ndarray], Any]]


def apply_decoders(frame: pd.DataFrame, decode: Mapping[str, Decoder], *, named: Named | None = None) -> pd.DataFrame:
    """Replace each named column by its decoded value and keep the raw one as ``<name>_raw``.

    ``named`` gives the decoders that names stand for (default :data:`DECODERS`,
    this machine's; :func:`recorded_decoders` gives a recording's).

    Raises
    ------
    DecodeError
        A column is missing, a decoder name is unknown, or values do not fit it.
    """
    return with_decoded(frame, decoded_columns(frame, decode, named=named))


def decoded_columns(
    columns: Mapping[str, Any] | pd.DataFrame, decode: Mapping[str, Decoder], *, named: Named | None = None
) -> dict[str, Any]:
    """The decoded values of the columns ``decode`` names, by column (the raw ones are in ``columns``).

    Where the decoding depends on the machine (kernel symbols, clocks), this
    runs on the machine the values come from; :func:`with_decoded` puts the
    result in a frame anywhere.
    """
    names = list(columns.keys())
    decoded = {}
    for column, decoder in decode.items():
        if column not in names:
            raise DecodeError(f"cannot decode {column!r}: no such column", hint=f"columns are: {', '.join(map(str, names))}")
        decoded[column] = _decoder(decoder, DECODERS if named is None else named)(np.asarray(columns[column]))
    return decoded


def with_decoded(frame: pd.DataFrame, decoded: Mapping[str, Any]) -> pd.DataFrame:
    """``frame`` with each column of ``decoded`` in place of the raw one, kept right after it as ``<name>_raw``."""
    if not decoded:
        return frame
    frame = frame.copy(deep=False)
    for column, values in decoded.items():
        raw = frame[column].to_numpy()
        position = list(frame.columns).index(column)
        frame[column] = pd.Series(values.array if isinstance(values, (pd.Series, pd.Index)) else values, index=frame.index)
        frame.insert(position + 1, f"{column}_raw", raw)
    return frame


def _decoder(decoder: Decoder, named: Named) -> Callable[[np.ndarray], Any]:
    if callable(decoder):
        return decoder
    if isinstance(decoder, Mapping):
        return functools.partial(_enum, decoder)
    if decoder in named:
        return named[decoder]
    if decoder in DECODERS:
        raise DecodeError(f"the decoder {decoder!r} needs the machine that recorded the data, and a recording does not hold it")
    raise DecodeError(
        f"unknown decoder {decoder!r}",
        hint=f"use one of {', '.join(sorted(named))}, a dict of names, or a function",
    )


def _by_unique(values: np.ndarray, convert: Callable[[Any], str]) -> Any:
    """Names from a per-value Python function called once per distinct value
    (addresses, errnos and symbols repeat), as a column of pandas' string dtype."""
    uniques, inverse = np.unique(values, return_inverse=True, axis=0 if values.ndim > 1 else None)
    names = pa.array([convert(u) for u in uniques], pa.string())
    return arrow_strings_to_pandas(names.take(pa.array(inverse.reshape(-1))))


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


def _errno_name(value: Any, *, names: Mapping[int, str]) -> str:
    number = abs(int(value))
    return names.get(number, str(int(value))) if number else "0"


def _errno(values: np.ndarray, *, names: Mapping[int, str] = errno_codes.errorcode) -> Any:
    return _by_unique(np.asarray(values, dtype=np.int64), functools.partial(_errno_name, names=names))


def _enum(names: Mapping[Any, str], values: np.ndarray) -> Any:
    return _by_unique(np.asarray(values), lambda v: names.get(v.item(), str(v.item())))


def _hex(values: np.ndarray) -> Any:
    return _by_unique(np.asarray(values), lambda v: hex(int(v)))


def _ksym(values: np.ndarray) -> Any:
    from ..kernel.symbols import kernel_symbols

    names = kernel_symbols().names(np.asarray(values, dtype=np.uint64))
    return arrow_strings_to_pandas(pa.array(names, pa.string()))


def _syscall(values: np.ndarray, *, names: Mapping[int, str] | None = None) -> Any:
    if names is None:
        from ..kernel.symbols import syscall_name

        return _by_unique(np.asarray(values, dtype=np.int64), lambda v: syscall_name(int(v)))
    return _by_unique(np.asarray(values, dtype=np.int64), lambda v: names.get(int(v), str(int(v))))


#: The kernel clocks event timestamps are read from, by name, and the constant each is in ``time``
#: (looked up when used: macOS has no CLOCK_BOOTTIME, and a capture's decoders import there).
_CLOCKS = {"boottime": "CLOCK_BOOTTIME", "monotonic": "CLOCK_MONOTONIC"}


def clock_offset_ns(clock: str) -> int:
    """Wall-clock ns minus ``clock``'s ns on this machine now, read as a tight sandwich of three readings.

    ``clock`` is ``"boottime"`` (``bpf_ktime_get_boot_ns``) or ``"monotonic"``
    (``bpf_ktime_get_ns``).
    """
    if clock not in _CLOCKS:
        raise ArgumentError(f"clock must be one of {sorted(_CLOCKS)}, not {clock!r}")
    clock_id = getattr(time, _CLOCKS[clock])
    best: tuple[int, int] | None = None
    for _ in range(5):
        before = time.time_ns()
        reading = time.clock_gettime_ns(clock_id)
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
    return utc_times(np.asarray(ns, dtype=np.int64) + clock_offset_ns(clock))


def utc_times(epoch_ns: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps from ns since the epoch (5x faster than ``pd.to_datetime(..., utc=True)``)."""
    return pd.DatetimeIndex(np.asarray(epoch_ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


def _shifted(ns: np.ndarray, *, offset: int) -> pd.DatetimeIndex:
    return utc_times(np.asarray(ns, dtype=np.int64) + offset)


def recorded_decoders(
    *, offsets: Mapping[str, int], syscalls: Mapping[int, str], errnos: Mapping[int, str]
) -> dict[str, Callable[[np.ndarray], Any]]:
    """The named decoders of data recorded on another machine, from what the recording kept of it.

    Parameters
    ----------
    offsets
        Wall-clock ns minus kernel-clock ns (:func:`clock_offset_ns`) of
        ``boottime`` and ``monotonic`` on the recording machine.
    syscalls, errnos
        The recording machine's syscall and errno names by number.

    ``ksym`` is left out: kernel addresses need that machine's symbols.
    """
    named = {name: DECODERS[name] for name in ("hex", "ipv4", "ipv6")}
    named.update({clock: functools.partial(_shifted, offset=offsets[clock]) for clock in _CLOCKS})
    named["syscall"] = functools.partial(_syscall, names=syscalls)
    named["errno"] = functools.partial(_errno, names=errnos)
    return named


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
