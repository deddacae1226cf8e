"""Views on a program's BPF maps: read-only ``Mapping``s with ``.df()``.

``prog[name]`` is a view chosen by the map's kernel type from :data:`VIEWS`.
Every view has ``.df()`` (a fresh DataFrame snapshot, columns as described in
:mod:`bpfnb._decode`), ``len()``, ``.clear()``, ``.history()`` and a notebook
display. Reads go through :class:`bpfnb._mapio.MapIO`: whole-map batch
lookups into numpy arrays, with a per-entry fallback.

What ``.df()`` returns, by map type:

- hash, LRU hash, LPM trie, array: key columns then value columns (rows of a
  hash come in the kernel's order: no particular one); an LPM trie's key
  struct gives ``prefixlen`` and the address fields as columns;
- per-CPU maps: numbers summed over CPUs by default; ``percpu="columns"``
  gives ``<column>.cpu<N>``, ``percpu="rows"`` a ``cpu`` column;
- histograms (``BPF_HISTOGRAM``, or any map with ``buckets=``): ``lo``,
  ``hi``, ``count`` per slot (see :mod:`bpfnb._histogram`);
- stack traces, queues/stacks, program and cgroup arrays: see
  :mod:`bpfnb._fdmaps`.

The map's type is read from BCC's module before BCC's own table class is
asked for, so map types BCC 0.26 cannot build (task/sk/inode storage,
sockmap, ...) give :class:`UnsupportedMapError` with a hint, not
"Unknown table type". Event buffers (ring and perf buffers) point to
``prog.stream(name)``.
"""

from __future__ import annotations

import ctypes
import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _html
from ._decode import Decoder, c_type_name, columns_of, dtype_of, to_frame
from ._exceptions import ArgumentError, BpfnbError, DecodeError, UnsupportedMapError
from ._histogram import histogram_frame, percentiles, text_histogram
from ._libbpf import MAP_TYPES, map_elem, map_info, num_possible_cpus
from ._mapio import MapIO, MapLayout

if TYPE_CHECKING:
    from ._history import MapHistory

__all__ = ["VIEWS", "BpfMap", "array_prelude", "entries_shown", "map_view"]

PERCPU_MODES = ("sum", "columns", "rows")
#: An array created with this flag can be mapped into the process and read without syscalls.
BPF_F_MMAPABLE = 1 << 10

# BCC's own array and histogram macros, redefined to add BPF_F_MMAPABLE: such a
# map is read through a shared mapping, about 25x faster than a batch lookup.
# BCC makes a histogram an array only when its key is an int (else a hash, which
# cannot be mapped), hence the flag's test of the key type.
_MMAPABLE_ARRAYS = """\
#undef BPF_ARRAY1
#undef BPF_ARRAY2
#undef BPF_ARRAY3
#undef BPF_HIST1
#undef BPF_HIST2
#undef BPF_HIST3
#define BPF_ARRAY1(_name) BPF_ARRAY3(_name, u64, 10000)
#define BPF_ARRAY2(_name, _leaf_type) BPF_ARRAY3(_name, _leaf_type, 10000)
#define BPF_ARRAY3(_name, _leaf_type, _size) BPF_F_TABLE("array", int, _leaf_type, _name, _size, BPF_F_MMAPABLE)
#define BPF_HIST1(_name) BPF_HIST3(_name, int, 64)
#define BPF_HIST2(_name, _key_type) BPF_HIST3(_name, _key_type, 64)
#define BPF_HIST3(_name, _key_type, _size) BPF_F_TABLE("histogram", _key_type, u64, _name, _size, \\
    __builtin_types_compatible_p(_key_type, int) ? BPF_F_MMAPABLE : 0)
"""


def array_prelude(source: str) -> str:
    """C text that makes ``source``'s arrays mmapable, or "" where the kernel would refuse it.

    The kernel refuses BPF_F_MMAPABLE for values holding a spin lock or a timer.
    """
    if "bpf_spin_lock" in source or "bpf_timer" in source:
        return ""
    return _MMAPABLE_ARRAYS
_PREVIEW_ROWS = 10
_CTYPES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)


@dataclass(frozen=True)
class MapSpec:
    """What BCC's module and the kernel say about one map."""

    name: str
    type_id: int
    fd: int
    key_ctype: type | None
    value_ctype: type | None
    max_entries: int
    key_size: int
    value_size: int
    map_flags: int

    @property
    def map_type(self) -> str:
        return MAP_TYPES.get(self.type_id, f"type {self.type_id}")


def describe(bpf: Any, name: str) -> MapSpec:
    """Read a map's type, fd and C types from BCC's module without building BCC's table."""
    from bcc import BPF
    from bcc.libbcc import lib

    module, raw = bpf.module, name.encode()
    fd = lib.bpf_table_fd(module, raw)
    if module is None or fd < 0:
        raise KeyError(name)
    type_id = lib.bpf_table_type_id(module, lib.bpf_table_id(module, raw))

    def ctype(desc: bytes | None) -> type | None:
        return BPF._decode_table_type(json.loads(desc)) if desc else None

    info = map_info(fd)
    return MapSpec(
        name=name,
        type_id=type_id,
        fd=fd,
        key_ctype=ctype(lib.bpf_table_key_desc(module, raw)),
        value_ctype=ctype(lib.bpf_table_leaf_desc(module, raw)),
        max_entries=info.max_entries,
        key_size=info.key_size,
        value_size=info.value_size,
        map_flags=info.map_flags,
    )


def map_view(program: Any, name: str) -> BpfMap:
    """The view on map ``name`` of ``program`` (a :class:`bpfnb.Program`), by map type."""
    spec = describe(program.bpf, name)
    return VIEWS.get(spec.type_id, UnsupportedMap)(program, spec)


def _is_histogram(source: str, name: str) -> bool:
    name = re.escape(name)
    pattern = rf'BPF_HISTOGRAM\s*\(\s*{name}\b|BPF_(?:F_)?TABLE\s*\(\s*"histogram"[^;]*?,\s*{name}\s*[,)]'
    return re.search(pattern, source or "") is not None


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

    def __init__(self, program: Any, spec: MapSpec) -> None:
        self.program = program
        self.spec = spec
        self.name = spec.name
        self.map_type = spec.map_type
        self.key_type = c_type_name(spec.key_ctype)
        self.value_type = c_type_name(spec.value_ctype)
        self.max_entries = spec.max_entries
        self.histogram = _is_histogram(getattr(program, "source", ""), spec.name)
        self.layout = self._layout()
        self._io = MapIO(spec.fd, self.layout, spec.max_entries, mmapable=self._mmapable())

    def _mmapable(self) -> bool:
        return False

    def _layout(self) -> MapLayout:
        spec = self.spec
        key = dtype_of(spec.key_ctype) if spec.key_ctype else np.dtype(f"V{max(spec.key_size, 1)}")
        value = dtype_of(spec.value_ctype) if spec.value_ctype else np.dtype(f"V{max(spec.value_size, 1)}")
        for what, dtype, size in (("key", key, spec.key_size), ("value", value, spec.value_size)):
            if size and dtype.itemsize != size:
                raise DecodeError(
                    f"map {spec.name!r}: the {what} type is {dtype.itemsize} bytes, the kernel says {size}",
                    hint="a type BCC could not describe (bit-fields, unusual packing)?",
                )
        return MapLayout(key, value, num_possible_cpus() if self.percpu else 0)

    # -- reading -----------------------------------------------------------

    def _alive(self) -> None:
        """Refuse to touch the fd of a detached program (it is closed, or reused)."""
        if getattr(self.program, "closed", False):
            raise BpfnbError(
                f"map {self.name!r} is gone: its program {getattr(self.program, 'name', '')!r} was detached",
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
        from ._history import MapHistory

        return MapHistory(self, interval=interval, max_rows=max_rows, **df_options)

    def live(self, kind: str | None = None, **options: Any) -> Any:
        """A plot of this map that redraws itself in the background; see :func:`bpfnb._live.live`."""
        from ._live import live

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


class HashMap(BpfMap):
    """Hash and LRU hash maps (and LPM tries: prefix length and address are columns)."""


class PerCpuHashMap(HashMap):
    """Per-CPU hash and LRU per-CPU hash maps: one value per possible CPU."""

    percpu = True


class ArrayMap(BpfMap):
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
        "task_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "sk_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "inode_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
        "cgrp_storage": "local storage is keyed by kernel objects; copy what you need into a hash map",
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


def _register() -> dict[int, type[BpfMap]]:
    from ._fdmaps import CgroupArrayMap, ProgArrayMap, QueueMap, StackTraceMap

    kinds = {
        "hash": HashMap,
        "lru_hash": HashMap,
        "lpm_trie": HashMap,
        "array": ArrayMap,
        "percpu_hash": PerCpuHashMap,
        "lru_percpu_hash": PerCpuHashMap,
        "percpu_array": PerCpuArrayMap,
        "stack_trace": StackTraceMap,
        "queue": QueueMap,
        "stack": QueueMap,
        "prog_array": ProgArrayMap,
        "cgroup_array": CgroupArrayMap,
    }
    by_name = {name: number for number, name in MAP_TYPES.items()}
    return {by_name[name]: view for name, view in kinds.items()}


#: The view class for each BPF_MAP_TYPE_* number; any other type is an UnsupportedMap.
VIEWS: dict[int, type[BpfMap]] = _register()
