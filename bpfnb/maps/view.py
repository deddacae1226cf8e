"""The view on one BPF map that every map type starts from: a live ``Mapping`` with ``.df()``.

Every read asks the kernel again, through :class:`bpfnb.maps.io.MapIO`:
whole-map batch lookups into numpy arrays, with a per-entry fallback, or a
shared mapping for mmapable arrays. Columns are made by :mod:`bpfnb.decode`.

Map types with more to say (key/value tables, stack traces, queues, arrays
of programs and cgroups) are subclasses in the modules beside this one; the
registry picks one by the map's kernel type.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from ..decode.columns import columns_of, to_frame
from ..decode.decoders import Decoder, apply_decoders
from ..decode.dtypes import c_type_name, dtype_of
from ..display.preview import Previewed
from ..engines.base import MapSpec, Owner
from ..errors import ArgumentError, BpfnbError, DecodeError, Interrupted
from ..kernel.libbpf import map_elem, num_possible_cpus
from ..plot.tables import table_html
from .io import MapIO, MapLayout

if TYPE_CHECKING:
    from ..live.widget import Live
    from .history import MapHistory

__all__ = ["PREVIEW_ROWS", "BpfMap", "Counted", "entries_shown"]

#: Rows a map's display shows.
PREVIEW_ROWS = 10
_CTYPES = (ctypes._SimpleCData, ctypes.Structure, ctypes.Union, ctypes.Array)


class BpfMap(Previewed, Mapping[Any, Any]):
    """A live view on one BPF map; every read asks the kernel again.

    As a ``Mapping`` its keys are numbers (scalar keys) or tuples (struct
    keys, in field order; BCC's ``table.Key`` objects work too) and its
    values numbers, dicts of columns (struct values) or per-CPU lists. Use
    :meth:`df` for anything bigger than a few lookups.
    """

    #: One value per possible CPU (per-CPU maps).
    percpu = False
    #: False where counting entries would disturb the map (queues are popped to count).
    countable_in_displays = True

    @property
    def recordable(self) -> bool:
        """Whether a recording snapshots it: reading it is cheap and changes nothing, as for counting it in displays."""
        return self.countable_in_displays

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

    @property
    def value_columns(self) -> frozenset[str]:
        """The value's columns as :func:`~bpfnb.decode.columns.columns_of` names them (``value`` for a scalar)."""
        return frozenset(columns_of(np.empty(0, self.layout.value), name="value"))

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
        try:
            keys, slots = self._io.read(limit=limit)
        except KeyboardInterrupt:
            raise Interrupted(f"reading map {self.name!r}") from None
        return keys, self.layout.values(slots)

    def df(self, *, decode: Mapping[str, Decoder] | None = None) -> pd.DataFrame:
        """A fresh snapshot of the map as a DataFrame.

        Parameters
        ----------
        decode
            Column decoders, e.g. ``{"saddr": "ipv4", "ts": "boottime"}``;
            the raw value stays as ``<column>_raw``.
        """
        keys, values = self.records()
        return self._named(self._frame(keys, values, decode=decode))

    def _named(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the map's name in its ``attrs``: plots and tables name what they show after it."""
        frame.attrs["name"] = self.name
        return frame

    def _frame(self, keys: np.ndarray, values: np.ndarray, *, decode: Mapping[str, Decoder] | None) -> pd.DataFrame:
        return self._named_enums(to_frame({"key": keys, "value": values}, decode=decode), decode)

    def _named_enums(self, frame: pd.DataFrame, decode: Mapping[str, Decoder] | None) -> pd.DataFrame:
        """Enum fields by their names (the number kept as ``<column>_raw``), unless ``decode`` says otherwise."""
        chosen = set(decode or ())
        names = {
            column: values
            for field, values in self.spec.enums.items()
            for column in (field, f"key.{field}", f"value.{field}")
            if column in frame.columns and column not in chosen
        }
        return apply_decoders(frame, names) if names else frame

    def __len__(self) -> int:
        self._alive()
        return self._io.count()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.records()[0].tolist())

    def __getitem__(self, key: Any) -> Any:
        self._alive()
        packed = self._pack(key)
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

    def _pack(self, key: Any) -> np.ndarray:
        """``key`` as the map's key bytes; an :class:`ArgumentError` when it does not fit the key type."""
        try:
            if isinstance(key, _CTYPES):  # BCC's table.Key(...) works too
                return np.frombuffer(bytes(key), self.layout.key)
            return np.array([key], dtype=self.layout.key)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ArgumentError(
                f"{key!r} is not a key of map {self.name!r}, whose keys are {self.key_type}",
                hint="give a number, or a tuple of the key struct's fields in order",
            ) from exc

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

    def live(self, kind: str | None = None, **options: Any) -> Live:
        """A plot of this map that redraws itself in the background; see :func:`bpfnb.live.live`."""
        from ..live import live

        return live(self, kind=kind, **options)

    # -- display -----------------------------------------------------------

    def _title(self) -> str:
        entries = entries_shown(self)
        kind = f"{self.map_type} (histogram)" if self.histogram else self.map_type
        return f"map {self.name}: {kind} {self.key_type} -> {self.value_type}, {entries} of {self.max_entries} entries"

    def _preview(self) -> tuple[str, pd.DataFrame | None]:
        """What a display shows: a text (a histogram), or the first rows of the frame."""
        return "", self._head()

    def _head(self) -> pd.DataFrame:
        keys, values = self.records(limit=PREVIEW_ROWS)
        return self._frame(keys, values, decode=None)

    def _table_html(self, head: pd.DataFrame) -> str:
        return table_html(self._named(head), max_cols=12)


class Counted(Protocol):
    """A map view as displays count it: every view, whatever made its map."""

    countable_in_displays: bool

    def __len__(self) -> int: ...


def entries_shown(view: Counted) -> object:
    """The entry count a display shows: ``len(view)``, or "?" where counting is impossible or intrusive."""
    if not view.countable_in_displays:
        return "?"
    try:
        return len(view)
    except Exception:  # a map type that cannot be counted from user space
        return "?"
