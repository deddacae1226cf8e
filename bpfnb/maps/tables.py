"""Views on key/value maps: hashes, arrays, their per-CPU forms, and maps user space cannot read.

What ``.df()`` returns for a key/value map: key columns then value columns
(rows of a hash come in the kernel's order: no particular one); an LPM trie's
key struct gives ``prefixlen`` and the address fields as columns; per-CPU maps
sum numbers over CPUs by default (``percpu="columns"`` gives
``<column>.cpu<N>``, ``percpu="rows"`` a ``cpu`` column); histograms
(``BPF_HISTOGRAM``, or any map with ``buckets=``) give ``lo``, ``hi``,
``count`` per slot (see :mod:`bpfnb.decode.histogram`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..decode.columns import columns_of, to_frame
from ..decode.decoders import Decoder
from ..decode.histogram import histogram_frame, percentiles, text_histogram
from ..errors import ArgumentError, DecodeError, UnsupportedMapError
from ..kernel.constants import BPF_F_MMAPABLE
from ..plot.units import read_percentiles
from .io import MapLayout
from .view import PREVIEW_ROWS, BpfMap

__all__ = ["PERCPU_MODES", "ArrayMap", "HashMap", "KeyValueMap", "PerCpuArrayMap", "PerCpuHashMap", "UnsupportedMap"]

#: How ``df(percpu=...)`` shows per-CPU values.
PERCPU_MODES = ("sum", "columns", "rows")


class KeyValueMap(BpfMap):
    """A map of keys to values: per-CPU values, histograms and percentiles on top of :class:`BpfMap`."""

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
            return self._named(frame)
        if not fits:
            raise DecodeError(
                f"map {self.name!r} is not a histogram: it needs a slot key and a scalar count",
                hint=f"name the slot field with slot=...; columns are {list(frame.columns)}",
            )
        return self._named(histogram_frame(frame, slot=slot_column, count="value", buckets=buckets, step=step))

    def _frame(
        self, keys: np.ndarray, values: np.ndarray, *, decode: Mapping[str, Decoder] | None, percpu: str = "sum"
    ) -> pd.DataFrame:
        if not self.percpu:
            return super()._frame(keys, values, decode=decode)
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
        return self._named_enums(to_frame({"key": keys, "value": columns}, decode=decode), decode)

    def percentiles(
        self, q: Sequence[float] = (50, 90, 99), *, unit: str | None = None, **df_options: Any
    ) -> pd.DataFrame:
        """Percentiles estimated from this histogram's buckets, with their bounds.

        See :func:`bpfnb.percentiles`; ``df_options`` go to :meth:`df`. When
        the buckets' unit is known (``unit="ns"``, or a map named for it, such
        as ``latency``), a ``reads`` column writes each estimate and its
        bounds in it: ``1.52 ms (1.05 ms to 2.1 ms)``.
        """
        found: pd.DataFrame = read_percentiles(percentiles(self.df(**df_options), q=q), unit=unit, names=[self.name])
        return found

    def _preview(self) -> tuple[str, pd.DataFrame | None]:
        if not self.histogram:
            return super()._preview()
        frame = self.df()
        if {"lo", "hi", "count"} <= set(frame.columns):
            return text_histogram(frame), None
        return "", frame.head(PREVIEW_ROWS)


class HashMap(KeyValueMap):
    """Hash and LRU hash maps (and LPM tries: prefix length and address are columns)."""


class PerCpuHashMap(HashMap):
    """Per-CPU hash and LRU per-CPU hash maps: one value per possible CPU."""

    percpu = True


class ArrayMap(KeyValueMap):
    """Arrays: every index exists; clearing writes zeros."""

    def _mmapable(self) -> bool:
        return self.map_type == "array" and bool(self.spec.map_flags & BPF_F_MMAPABLE)

    def __len__(self) -> int:
        return self.max_entries

    def clear(self) -> None:
        """Write zeros to every slot (array entries cannot be deleted)."""
        self._alive()
        keys = np.arange(self.max_entries, dtype=np.uint32).view(self.layout.key)
        self._io.update(keys, np.zeros(self.max_entries, self.layout.slot))


class PerCpuArrayMap(ArrayMap):
    """Per-CPU arrays."""

    percpu = True


class UnsupportedMap(BpfMap):
    """A map whose contents user space cannot list (or bpfnb does not read yet)."""

    _HINTS = {
        "perf_event_array": "it is an event buffer: read it with prog.stream({name!r})",
        "ringbuf": "it is an event buffer: read it with prog.stream({name!r})",
        "inode_storage": "user space reaches inode storage only through an fd on each file, and cannot list "
        "the inodes that have a value: copy what you need into a hash map keyed by inode number, or send it "
        "to a ring buffer",
    }

    def _layout(self) -> MapLayout:
        return MapLayout(np.dtype(f"V{max(self.spec.key_size, 1)}"), np.dtype(f"V{max(self.spec.value_size, 1)}"))

    def _refuse(self) -> UnsupportedMapError:
        hint = self._HINTS.get(self.map_type, "copy what you need into a BPF_HASH or BPF_ARRAY and read that")
        article = "an" if self.map_type[0] in "aeiou" else "a"
        return UnsupportedMapError(
            f"map {self.name!r} is {article} {self.map_type} map, which bpfnb cannot read from user space",
            hint=hint.format(name=self.name),
        )

    def records(self, *, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        raise self._refuse()

    def __len__(self) -> int:
        raise self._refuse()

    def clear(self) -> None:
        raise self._refuse()


def _sum_over_cpus(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, np.ndarray) and first.ndim == 1 and first.dtype.kind in "iuf":
        return np.sum(parts, axis=0, dtype=first.dtype)
    return first  # strings and arrays: CPU 0's copy
