"""The view on one BPF map that every map type starts from: a live ``Mapping`` with ``.df()``.

Every read asks the kernel again, through :class:`bpfnb.maps.io.MapIO`:
whole-map batch lookups into numpy arrays, with a per-entry fallback, or a
shared mapping for mmapable arrays. Columns are made by :mod:`bpfnb.decode`.

What ``.df()`` returns for a key/value map: key columns then value columns
(rows of a hash come in the kernel's order: no particular one); an LPM trie's
key struct gives ``prefixlen`` and the address fields as columns; per-CPU maps
sum numbers over CPUs by default (``percpu="columns"`` gives
``<column>.cpu<N>``, ``percpu="rows"`` a ``cpu`` column); histograms
(``BPF_HISTOGRAM``, or any map with ``buckets=``) give ``lo``, ``hi``,
``count`` per slot (see :mod:`bpfnb.decode.histogram`).
"""

from __future__ import annotations

import ctypes
import html
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..decode.columns import Decoder, c_type_name, columns_of, dtype_of, to_frame
from ..decode.histogram import histogram_frame, percentiles, text_histogram
from ..display import html as _html
from ..engines.base import MapSpec, Owner
from ..errors import ArgumentError, BpfnbError, DecodeError
from ..kernel.libbpf import map_elem, num_possible_cpus
from .io import MapIO, MapLayout

if TYPE_CHECKING:
    from ..live.widget import Live
    from .history import MapHistory

__all__ = ["PERCPU_MODES", "BpfMap", "entries_shown"]

PERCPU_MODES = ("sum", "columns", "rows")

_PREVIEW_ROWS = 10
_CTYPES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)


class BpfMap(Mapping[Any, Any]):
    """A live view on one BPF map; every read asks the kernel again.

    As a ``Mapping`` its keys are numbers (scalar keys) or tuples (struct
    keys, in field order; BCC's ``table.Key`` objects work too) and its
    values numbers, dicts of columns (struct values) or per-CPU lists. Use
    :meth:`df` for anything bigger than a few lookups.
    """

    percpu = False
    #: False where counting entries would disturb the map (queues are popped to count).
    countable_in_displays = True

    def __init__(self, program: Owner, spec: MapSpec) -> None:
        self.program = program
        self.spec = spec
        self.name = spec.name
        self.map_type = spec.map_type
        self.key_type = c_type_name(spec.key_type)
        self.value_type = c_type_name(spec.value_type)
        self.max_entries = spec.max_entries
        self.histogram = spec.histogram
        self.layout = self._layout()
        self._io = MapIO(spec.fd, self.layout, spec.max_entries, mmapable=self._mmapable())

    def _mmapable(self) -> bool:
        return False

    def _layout(self) -> MapLayout:
        spec = self.spec
        key = dtype_of(spec.key_type) if spec.key_type else np.dtype(f"V{max(spec.key_size, 1)}")
        value = dtype_of(spec.value_type) if spec.value_type else np.dtype(f"V{max(spec.value_size, 1)}")
        for what, dtype, size in (("key", key, spec.key_size), ("value", value, spec.value_size)):
            if size and dtype.itemsize != size:
                raise DecodeError(
                    f"map {spec.name!r}: the {what} type is {dtype.itemsize} bytes, the kernel says {size}",
                    hint="a type the engine could not describe (bit-fields, unusual packing)?",
                )
        return MapLayout(key, value, num_possible_cpus() if self.percpu else 0)

    # -- reading -----------------------------------------------------------

    def _alive(self) -> None:
        """Refuse to touch the fd of a detached program (it is closed, or reused)."""
        if self.program.closed:
            raise BpfnbError(
                f"map {self.name!r} is gone: its program {self.program.name!r} was detached",
                hint="run the cell that defines it again",
            )

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw keys and values as numpy records (per-CPU values shaped (n, cpus)).

        ``limit`` reads only the first entries (in the kernel's order).
        """
        self._alive()
        keys, slots = self._io.read(limit=limit)
        return keys, self.layout.values(slots)

    def df(
        self,
        *,
        decode: Mapping[str, Decoder] | None = None,
        percpu: str = "sum",
        buckets: str | None = None,
        step: int = 1,
        slot: str = "slot",
    ) -> pd.DataFrame:
        """A fresh snapshot of the map as a DataFrame.

        Parameters
        ----------
        decode
            Column decoders, e.g. ``{"saddr": "ipv4", "ts": "boottime"}``;
            the raw value stays as ``<column>_raw``.
        percpu
            Per-CPU maps: ``"sum"`` (one row per key, numbers summed over
            CPUs), ``"columns"`` (``<column>.cpu<N>``) or ``"rows"`` (a
            ``cpu`` column).
        buckets
            ``"log2"`` or ``"linear"`` returns buckets (``lo``, ``hi``,
            ``count``) instead of raw slots; histograms (``BPF_HISTOGRAM``
            keyed by a number or by a struct with a ``slot`` field) default
            to ``"log2"``.
        step
            The width of a linear bucket.
        slot
            The slot field of a struct key (BCC's tools call it ``slot``).
        """
        keys, values = self.records()
        frame = self._frame(keys, values, decode=decode, percpu=percpu)
        slot_column = "key" if keys.dtype.names is None else slot
        fits = slot_column in frame.columns and "value" in frame.columns
        if buckets is None and self.histogram and fits:
            buckets = "log2"
        if buckets is None:
            return frame
        if not fits:
            raise DecodeError(
                f"map {self.name!r} is not a histogram: it needs a slot key and a scalar count",
                hint=f"name the slot field with slot=...; columns are {list(frame.columns)}",
            )
        return histogram_frame(frame, slot=slot_column, count="value", buckets=buckets, step=step)

    def _frame(
        self, keys: np.ndarray, values: np.ndarray, *, decode: Mapping[str, Decoder] | None, percpu: str
    ) -> pd.DataFrame:
        if values.ndim == 1:
            return to_frame({"key": keys, "value": values}, decode=decode)
        if percpu not in PERCPU_MODES:
            raise ArgumentError(f"percpu must be one of {PERCPU_MODES}, not {percpu!r}")
        cpus = values.shape[1]
        if percpu == "rows":
            cpu = {"cpu": np.tile(np.arange(cpus, dtype=np.uint32), len(keys))}
            return to_frame({"key": np.repeat(keys, cpus), "cpu": cpu, "value": values.reshape(-1)}, decode=decode)
        per_cpu = [columns_of(values[:, c], name="value") for c in range(cpus)]
        if percpu == "columns":
            columns = {f"{col}.cpu{c}": part[col] for col in per_cpu[0] for c, part in enumerate(per_cpu)}
        else:
            columns = {col: _sum_over_cpus([part[col] for part in per_cpu]) for col in per_cpu[0]}
        return to_frame({"key": keys, "value": columns}, decode=decode)

    def percentiles(self, q: Sequence[float] = (50, 90, 99), **df_options: Any) -> pd.DataFrame:
        """Percentiles estimated from this histogram's buckets, with their bounds.

        See :func:`bpfnb._histogram.percentiles`; ``df_options`` go to :meth:`df`.
        """
        return percentiles(self.df(**df_options), q=q)

    def __len__(self) -> int:
        self._alive()
        return self._io.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.records()[0].tolist())

    def __getitem__(self, key: Any) -> Any:
        self._alive()
        if isinstance(key, _CTYPES):  # BCC's table.Key(...) works too
            packed = np.frombuffer(bytes(key), self.layout.key)
        else:
            packed = np.array([key], dtype=self.layout.key)
        slot = np.empty(1, self.layout.slot)
        if not map_elem("lookup_elem", self.spec.fd, packed.ctypes.data, slot.ctypes.data):
            raise KeyError(key)
        value = self.layout.values(slot)
        if value.ndim > 1:
            value = value[0]
            return value.tolist()
        if value.dtype.names is None:
            return value[0].item()
        cells = {column: values[0] for column, values in columns_of(value).items()}
        return {c: v.item() if isinstance(v, np.generic) else v for c, v in cells.items()}

    def __contains__(self, key: object) -> bool:
        try:
            self[key]
        except (KeyError, ValueError, TypeError):
            return False
        return True

    # -- writing -----------------------------------------------------------

    def clear(self) -> None:
        """Delete every entry (one batch delete where the kernel allows)."""
        self._io.delete(self.records()[0])

    # -- over time ---------------------------------------------------------

    def history(self, interval: float = 1.0, *, max_rows: int = 100_000, **df_options: Any) -> MapHistory:
        """Record a snapshot every ``interval`` seconds in the background; see :class:`MapHistory`."""
        from .history import MapHistory

        return MapHistory(self, interval=interval, max_rows=max_rows, **df_options)

    def live(self, kind: str | None = None, **options: Any) -> Any:
        """A plot of this map that redraws itself in the background; see :func:`bpfnb._live.live`."""
        from ..live.widget import live

        return live(self, kind=kind, **options)

    # -- display -----------------------------------------------------------

    def _title(self) -> str:
        entries = entries_shown(self)
        kind = f"{self.map_type} (histogram)" if self.histogram else self.map_type
        return f"map {self.name}: {kind} {self.key_type} -> {self.value_type}, {entries} of {self.max_entries} entries"

    def _preview(self) -> tuple[str, pd.DataFrame | None]:
        """Text of a histogram, or the first rows of the frame."""
        if self.histogram:
            frame = self.df()
            if {"lo", "hi", "count"} <= set(frame.columns):
                return text_histogram(frame), None
            return "", frame.head(_PREVIEW_ROWS)
        return "", self._head()

    def _head(self) -> pd.DataFrame:
        keys, values = self.records(limit=_PREVIEW_ROWS)
        return self._frame(keys, values, decode=None, percpu="sum")

    def __repr__(self) -> str:
        try:
            text, head = self._preview()
        except Exception as exc:  # a display must not raise: show why instead
            text, head = f"({type(exc).__name__}: {exc})", None
        body = text if head is None else head.to_string(max_cols=12)
        return f"<bpfnb {self._title()}>\n{body}"

    def _repr_html_(self) -> str:
        try:
            text, head = self._preview()
        except Exception as exc:  # a display must not raise: show why instead
            return _html.card(self._title(), _html.note(f"{type(exc).__name__}: {exc}", kind="bad"))
        body = f"<pre>{html.escape(text)}</pre>" if head is None else head.to_html(max_cols=12)
        return _html.card(self._title(), body)


def _sum_over_cpus(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, np.ndarray) and first.ndim == 1 and first.dtype.kind in "iuf":
        return np.sum(parts, axis=0, dtype=first.dtype)
    return first  # strings and arrays: CPU 0's copy


def entries_shown(view: BpfMap) -> object:
    """The entry count a display shows: ``len(view)``, or "?" where counting is impossible or intrusive."""
    if not view.countable_in_displays:
        return "?"
    try:
        return len(view)
    except Exception:  # a map type that cannot be counted from user space
        return "?"
