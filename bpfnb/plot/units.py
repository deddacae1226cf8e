"""Units a person reads: durations in ns/µs/ms/s, sizes in B/KiB/MiB, counts with thousands separators.

A :class:`Unit` says what a column's numbers are (a kind and the size of one
raw value in that kind's base unit) and writes them for people: on axes, in
percentile marks, in tables and in live status lines. :func:`unit_for`
chooses a column's unit from what bpfnb knows, first match wins:

1. a unit the user gave (``unit="ns"``);
2. the frame's own ``attrs["units"]`` (bpfnb's producers set it: a map
   history's ``delta`` and ``rate`` are counts);
3. the column's name, then the map's name: ``*_ns``, ``usecs``, ``*_ms`` are
   durations of that unit; ``lat``, ``latency``, ``delta``, ``duration``,
   ``elapsed`` are nanoseconds (what ``bpf_ktime_get_ns()`` differences
   are); ``bytes``, ``size``, ``len`` are bytes;
4. otherwise a count.

    >>> parse_unit("ns").text(24_200)
    '24.2 µs'
    >>> parse_unit("bytes").text(3 * 1024**2)
    '3 MiB'
    >>> COUNT.text(1234567)
    '1,234,567'
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from matplotlib.ticker import Formatter, Locator, MaxNLocator

from ..errors import ArgumentError

__all__ = [
    "COUNT",
    "NANOSECONDS",
    "Kind",
    "Unit",
    "UnitFormatter",
    "UnitLocator",
    "ViewLocator",
    "known_unit",
    "parse_unit",
    "read_percentiles",
    "unit_for",
]

Kind = Literal["duration", "size", "count"]

# Sub-units of each kind, smallest first: (name, size in the kind's base unit).
_DURATIONS = (("ns", 1e-9), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("min", 60.0), ("h", 3600.0))
_SIZES = (("B", 1.0), ("KiB", 1024.0), ("MiB", 1024.0**2), ("GiB", 1024.0**3), ("TiB", 1024.0**4))


@dataclass(frozen=True)
class Unit:
    """What one raw number of a column is.

    Parameters
    ----------
    kind : {"duration", "size", "count"}
        Durations are written in ns/µs/ms/s, sizes in B/KiB/MiB/GiB, counts
        with thousands separators.
    scale : float
        One raw value in the kind's base unit (seconds, bytes, one): 1e-9
        for nanoseconds, 1024 for KiB.
    """

    kind: Kind
    scale: float = 1.0

    @property
    def name(self) -> str:
        """The raw values' own unit: ``ns``, ``B``, or empty for counts."""
        for name, size in _steps(self.kind):
            if math.isclose(size, self.scale):
                return name
        return ""

    def __str__(self) -> str:
        """The name :func:`parse_unit` reads back (``ns``, ``B``, ``count``): for a frame's JSON-safe attrs."""
        return self.name or "count"

    def text(self, value: float) -> str:
        """``value`` (raw) in the sub-unit that reads best for it alone: ``24.2 µs``, ``1.5 MiB``, ``12,345``."""
        if self.kind == "count":
            return _count_text(float(value))
        return self._in(float(value), self._step_for(abs(float(value)) * self.scale))

    def texts(self, values: Sequence[float]) -> list[str]:
        """Several values in one common sub-unit (an axis's ticks): ``0``, ``10 ms``, ``20 ms``."""
        if self.kind == "count":
            return [_count_text(float(v)) for v in values]
        biggest = max((abs(float(v)) for v in values), default=0.0)
        step = self._step_for(biggest * self.scale)
        return [self._in(float(v), step) for v in values]

    def _step_for(self, base_value: float) -> tuple[str, float]:
        steps = _steps(self.kind)
        chosen = steps[0]
        for name, size in steps:
            if base_value >= size * 0.9995:  # 999.6 µs rounds to 1 ms, not to "1000 µs"
                chosen = (name, size)
        return chosen

    def _in(self, value: float, step: tuple[str, float]) -> str:
        if value == 0:
            return "0"
        return f"{_digits(value * self.scale / step[1])} {step[0]}"

    def formatter(self, *, log: bool = False) -> UnitFormatter:
        """A matplotlib tick formatter writing this unit (one sub-unit per tick on a log axis)."""
        return UnitFormatter(self, log=log)

    def locator(self, *, log: bool = False, most: int = 8) -> Locator:
        """A matplotlib tick locator putting ticks on round values of this unit."""
        return UnitLocator(self, log=log, most=most)

    def log_ticks(self, low: float, high: float, *, most: int = 8) -> list[float]:
        """Round raw values between ``low`` and ``high`` (both > 0) for a log axis, at most ``most``.

        Durations and counts get 1-2-5 decades of their base unit (1 µs,
        10 µs, 100 µs, 1 ms); sizes get powers of two (1 KiB, 4 KiB, 16 KiB).
        """
        if not (0 < low < high) or not math.isfinite(high):
            return []
        if self.kind == "size":
            first, last = math.ceil(math.log2(low * self.scale)), math.floor(math.log2(high * self.scale))
            for every in (1, 2, 5, 10, 20):
                powers = [p for p in range(first, last + 1) if p % every == 0]
                if len(powers) <= most:
                    return [2.0**p / self.scale for p in powers]
            return []
        first, last = math.floor(math.log10(low * self.scale)), math.ceil(math.log10(high * self.scale))

        def at(multiples: Sequence[int]) -> list[float]:
            ticks = [m * 10.0**d / self.scale for d in range(first, last + 1) for m in multiples]
            return [t for t in ticks if low * (1 - 1e-9) <= t <= high * (1 + 1e-9)]

        fine, *rounder = [at(m) for m in ((1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 5), (1, 3), (1,))]
        # The roundest ticks that give three, else two, else every digit (a range narrower than a decade).
        for enough in (3, 2):
            for ticks in rounder:
                if enough <= len(ticks) <= most:
                    return ticks
        if len(fine) <= most:
            return fine
        decades = list(range(first, last + 1))
        every = math.ceil(len(decades) / most)
        return [10.0**d / self.scale for d in decades if d % every == 0 and low <= 10.0**d / self.scale <= high]


#: Counts (and numbers bpfnb knows nothing about).
COUNT = Unit("count")
#: Nanoseconds: what ``bpf_ktime_get_ns()`` differences are.
NANOSECONDS = Unit("duration", 1e-9)


def _steps(kind: Kind) -> tuple[tuple[str, float], ...]:
    return _DURATIONS if kind == "duration" else _SIZES if kind == "size" else (("", 1.0),)


def _digits(x: float) -> str:
    """At most three significant digits, no exponent, no trailing zeros: 24.2, 1.5, 253, 1000."""
    magnitude = abs(x)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _count_text(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e12:
        return f"{_digits(x / 1e12)} trillion"
    if abs(x) >= 1e9:
        return f"{_digits(x / 1e9)} billion"
    if x.is_integer() or abs(x) >= 100:
        return f"{round(x):,}"
    return _digits(x)


class UnitFormatter(Formatter):
    """Tick labels in a :class:`Unit`: one common sub-unit on a linear axis, the best one per tick on a log axis."""

    def __init__(self, unit: Unit, *, log: bool = False) -> None:
        self.unit = unit
        self.log = log

    def __call__(self, x: float, pos: int | None = None) -> str:
        return self.unit.text(x)

    def format_ticks(self, values: Any) -> list[str]:
        values = [float(v) for v in values]
        return [self.unit.text(v) for v in values] if self.log else self.unit.texts(values)


class ViewLocator(Locator):
    """A locator whose ticks depend on the axis's view only: subclasses say where in :meth:`tick_values`."""

    def __call__(self) -> Any:
        low, high = self.axis.get_view_interval()  # type: ignore[union-attr]
        return self.tick_values(low, high)


class UnitLocator(ViewLocator):
    """Ticks on round values of a :class:`Unit` (see :meth:`Unit.log_ticks`; linear axes step 1-2-2.5-5 in the
    sub-unit of the axis's end, so KiB axes step in KiB, not in thousands of bytes)."""

    def __init__(self, unit: Unit, *, log: bool = False, most: int = 8) -> None:
        self.unit = unit
        self.log = log
        self.most = most

    def tick_values(self, vmin: float, vmax: float) -> Any:
        low, high = sorted((float(vmin), float(vmax)))
        if self.log:
            return np.array(self.unit.log_ticks(max(low, 1e-300), high, most=self.most))
        step = self.unit._step_for(max(abs(low), abs(high)) * self.unit.scale)[1] / self.unit.scale
        ticks = MaxNLocator(nbins=self.most - 1, steps=[1, 2, 2.5, 5, 10]).tick_values(low / step, high / step)
        return np.asarray(ticks) * step


# -- choosing a unit -----------------------------------------------------------

_NAMES: dict[str, Unit] = {
    **{name: Unit("duration", 1e-9) for name in ("ns", "nsec", "nsecs", "nanoseconds")},
    **{name: Unit("duration", 1e-6) for name in ("us", "µs", "μs", "usec", "usecs", "microseconds")},
    **{name: Unit("duration", 1e-3) for name in ("ms", "msec", "msecs", "milliseconds")},
    **{name: Unit("duration", 1.0) for name in ("s", "sec", "secs", "seconds")},
    **{name: Unit("size", 1.0) for name in ("b", "byte", "bytes")},
    "kib": Unit("size", 1024.0),
    "mib": Unit("size", 1024.0**2),
    **{name: COUNT for name in ("count", "counts", "events", "calls", "number")},
}
# Words in a column's or map's name that say what its numbers are.
_DURATION_WORDS = {"lat", "latency", "delta", "duration", "dur", "elapsed", "runtime", "wait", "sleep", "slept"}
_SIZE_WORDS = {"bytes", "size", "len", "length", "sz"}
_SUFFIXES = {word: unit for word, unit in _NAMES.items() if unit.kind == "duration" and word not in ("s", "sec")}


def parse_unit(text: str) -> Unit:
    """The unit named ``text``: ``ns``, ``us``/``µs``, ``ms``, ``s``, ``bytes``, ``KiB``, ``MiB``, ``count``.

    Raises
    ------
    ArgumentError
        For a name it does not know, listing the ones it does.
    """
    unit = _NAMES.get(text.strip().lower())
    if unit is None:
        raise ArgumentError(
            f"unknown unit {text!r}",
            hint="use ns, us, ms, s (durations), bytes, KiB, MiB (sizes) or count",
        )
    return unit


def unit_for(
    column: str,
    *,
    given: str | Unit | None = None,
    units: Mapping[str, Any] | None = None,
    names: Sequence[str] = (),
) -> Unit:
    """The unit of ``column``'s numbers, from what is known about it (see the module's docstring).

    Parameters
    ----------
    column : str
        The column's name (``lat_ns``, ``value``, ``lo``).
    given : str or Unit, optional
        A unit the user gave; it wins.
    units : mapping, optional
        A frame's ``attrs["units"]``: column name to unit name.
    names : sequence of str, optional
        Other names that describe the column, in order: the map's name.
    """
    return known_unit(column, given=given, units=units, names=names) or COUNT


def known_unit(
    column: str,
    *,
    given: str | Unit | None = None,
    units: Mapping[str, Any] | None = None,
    names: Sequence[str] = (),
) -> Unit | None:
    """Like :func:`unit_for`, but None when nothing says what the column is (an id, a pid, a slot...)."""
    if isinstance(given, Unit):
        return given
    if given:
        return parse_unit(given)
    known = (units or {}).get(column)
    if known:
        return known if isinstance(known, Unit) else parse_unit(str(known).removesuffix("/s"))
    for name in (column, *names):
        unit = _from_name(name)
        if unit is not None:
            return unit
    return None


def _from_name(name: str) -> Unit | None:
    words = [w for w in re.split(r"[^0-9a-zµμ]+", name.lower()) if w]
    if not words:
        return None
    if words[-1] in _SUFFIXES:
        return _SUFFIXES[words[-1]]
    if any(w in _SIZE_WORDS for w in words):
        return Unit("size")
    if any(w in _DURATION_WORDS for w in words):
        return NANOSECONDS
    return None


def read_percentiles(found: Any, *, unit: str | None, names: Sequence[str]) -> Any:
    """``found`` (a frame of :func:`bpfnb.percentiles`) with a ``reads`` column writing each estimate and its
    bounds in the buckets' unit, ``1.52 ms (1.05 ms to 2.1 ms)``, when the unit is known (given, or from
    ``names``, such as a map called ``latency``); as it is otherwise."""
    known = known_unit("lo", given=unit, names=names)
    if known is not None and len(found):
        found["reads"] = [
            f"{known.text(v)} ({known.text(lo)} to {known.text(hi + 1)})" if not math.isnan(v) else ""
            for v, lo, hi in found[["value", "lo", "hi"]].to_numpy(dtype=float)
        ]
        found.attrs["units"] = {column: str(known) for column in ("value", "lo", "hi")}
    return found
