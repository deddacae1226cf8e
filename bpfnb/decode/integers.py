"""Columns of integers that arrive as Python ints or as decimal text, made numpy arrays fast.

Tools that print (bpftrace) hand over numbers as text or JSON. A column of a
million decimal strings is checked with one regex pass over the column joined
by NULs (which no printed string holds) and parsed by numpy, not value by value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["as_integers", "integers"]

_DECIMAL_CHARACTERS = re.compile(r"[-0-9\0]*")


def integers(values: Sequence[object]) -> np.ndarray:
    """Integers, or their decimal strings, as int64; as uint64 where one is beyond 2**63 - 1."""
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        return np.array(values, dtype=np.uint64)


def as_integers(texts: Sequence[str]) -> np.ndarray | None:
    """``texts`` as integers when every one is a decimal integer (and there is one), else None."""
    if not texts or _DECIMAL_CHARACTERS.fullmatch("\0".join(texts)) is None:
        return None
    try:
        return integers(texts)
    except (ValueError, OverflowError):  # a lone "-" or one inside a value; beyond 64 bits
        return None
