"""C character arrays to pandas strings, vectorized (a million ``comm`` fields in milliseconds)."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = ["arrow_strings_to_pandas", "strings_from_chars"]


def strings_from_chars(chars: np.ndarray) -> pd.Series:
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
        return arrow_strings_to_pandas(pa.Array.from_buffers(pa.large_string() if large else pa.string(), n, buffers))
    binary = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), n, buffers)
    try:
        strings = binary.cast(pa.large_string() if large else pa.string())
    except pa.ArrowInvalid:
        # Rare (non-UTF-8 bytes): decode each distinct value once in Python.
        codes, uniques = pd.factorize(np.asarray(binary.to_pylist(), dtype=object))
        texts = [u.decode("utf-8", "replace") for u in uniques]
        strings = pa.array(texts, pa.string()).take(pa.array(codes))
    return arrow_strings_to_pandas(strings)


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


def arrow_strings_to_pandas(strings: pa.Array) -> pd.Series:
    """An arrow string array as a pandas Series of pandas' default string dtype."""
    mapper = {pa.string(): _DEFAULT_STR, pa.large_string(): _DEFAULT_STR}.get
    series: pd.Series = strings.to_pandas(types_mapper=mapper if isinstance(_DEFAULT_STR, pd.StringDtype) else None)
    return series
