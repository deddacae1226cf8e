"""A recorded map and its histories, read like live ones.

The recording kept each map's snapshots as its history table (``time``,
the columns of ``.df()``, then deltas and rates, as :class:`bpfnb.MapHistory`
makes them), the snapshots a user's own ``.history()`` took, and for per-CPU
maps the latest snapshot one row per CPU. ``.df()`` is the last snapshot;
the options of a live ``.df()`` that can be answered from what was kept
(``decode=``, ``percpu=``, ``buckets=``) give what they gave live.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..decode.decoders import Decoder, apply_decoders
from ..decode.histogram import histogram_frame, percentiles, text_histogram
from ..decode.keyed import split_columns, summed
from ..display import html as _html
from ..display.preview import Previewed
from ..errors import ArgumentError, CaptureError, DecodeError
from .files import recorded
from .owner import RecordingOwner
from .replay import Replay, Replayable

__all__ = ["RecordedHistory", "RecordedMap"]

#: What ``df(percpu=...)`` accepts, as for a live per-CPU map.
_PERCPU_MODES = ("sum", "columns", "rows")
_PREVIEW_ROWS = 10


class RecordedMap(Replayable, Previewed):
    """One map of a recorded program: its last snapshot with ``.df()``, how it changed with ``.history()``."""

    #: Displays may count its entries (a recording's snapshot, not a queue to empty).
    countable_in_displays = True

    def __init__(self, program: RecordingOwner, entry: Mapping[str, Any]) -> None:
        self.program = program
        self._entry = entry
        self.name: str = entry["name"]
        self.map_type: str = entry["type"]
        self.key_type: str = entry["key_type"]
        self.value_type: str = entry["value_type"]
        #: None for a map its engine reports as frames (bpftrace's).
        self.max_entries: int | None = entry["max_entries"]
        self.histogram: bool = entry["histogram"]
        self.percpu: bool = entry["percpu"]

    # -- reading -------------------------------------------------------------

    def _table(self, spec: Mapping[str, Any]) -> pd.DataFrame:
        return self.program.capture.files.frame(spec["table"])

    def _last(self, what: str) -> pd.DataFrame:
        """The last snapshot of table ``what`` (``snapshots``, ``percpu_rows``), as ``.df()`` gave it."""
        self.program.alive("read a map of")
        spec = self._entry.get(what)
        if spec is None:
            raise CaptureError(
                f"map {self.name!r} was not recorded: a {self.map_type} map cannot be read without changing it",
                hint="copy what you need into a hash or array map, and record that",
            )
        frame = self._table(spec)
        cursor = self.program.capture.cursor
        if cursor is not None:
            # The latest snapshot then: its rows share one time.
            before = frame[frame["time"] <= cursor] if len(frame) else frame
            last = before[before["time"] == before["time"].max()] if len(before) else frame.iloc[:0]
        else:
            last = frame.tail(spec["last_rows"])
        if not len(frame):
            last = pd.DataFrame(columns=spec["columns"])
        shown: pd.DataFrame = last[spec["columns"]].reset_index(drop=True)
        return shown

    def df(
        self,
        *,
        decode: Mapping[str, Decoder] | None = None,
        percpu: str = "sum",
        buckets: str | None = None,
        step: int = 1,
        slot: str = "slot",
        merge: str | None = None,
    ) -> pd.DataFrame:
        """The map as its last snapshot showed it; the options are those of a live map's ``.df()``.

        ``decode=`` names numbers as the recording machine did (its syscall
        and errno names, its clocks); ``ksym`` is not available in a capture.
        A map recorded across hosts has a ``host`` column; ``merge="sum"``
        adds its values across hosts, as the cluster's map did.
        """
        if percpu not in _PERCPU_MODES:
            raise ArgumentError(f"percpu must be one of {_PERCPU_MODES}, not {percpu!r}")
        if merge not in (None, "sum"):
            raise ArgumentError(f"merge must be None or 'sum', not {merge!r}")
        frame = self._per_cpu(percpu) if self.percpu and percpu != "sum" else self._last("snapshots")
        if merge == "sum":
            frame = self._summed(frame)
        if decode:
            frame = apply_decoders(frame, decode, named=self.program.capture.decoders)
        return recorded(frame if buckets is None else self._buckets(frame, buckets=buckets, step=step, slot=slot))

    def _summed(self, frame: pd.DataFrame) -> pd.DataFrame:
        if "host" not in frame.columns:
            raise ArgumentError(f"map {self.name!r} was recorded on one host: there is nothing to merge", hint="read it with merge=None")
        per_key = frame.drop(columns=["host"])
        keys, values = split_columns(per_key, self._entry.get("value_columns", ()))
        try:
            return summed(per_key, keys, values)
        except ValueError as exc:
            raise ArgumentError(f"merge='sum' adds numbers; {exc}", hint="read it with merge=None (a host column)") from None

    def _per_cpu(self, percpu: str) -> pd.DataFrame:
        rows = self._last("percpu_rows")
        if percpu == "rows":
            return rows
        at = list(rows.columns).index("cpu")
        keys, values = list(rows.columns[:at]), list(rows.columns[at + 1 :])
        cpus = sorted(rows["cpu"].unique())
        by_cpu = [rows[rows["cpu"] == cpu].reset_index(drop=True) for cpu in cpus]
        columns: dict[str, Any] = {key: by_cpu[0][key].array for key in keys}
        columns.update({f"{v}.cpu{cpu}": part[v].array for v in values for cpu, part in zip(cpus, by_cpu)})
        return pd.DataFrame(columns)

    def _buckets(self, frame: pd.DataFrame, *, buckets: str, step: int, slot: str) -> pd.DataFrame:
        """Buckets from the recorded slots: a histogram's are recomputed from its ``slot`` and ``count``."""
        if {"lo", "hi", "count"} <= set(frame.columns):
            return histogram_frame(frame.drop(columns=["lo", "hi"]), slot="slot", count="count", buckets=buckets, step=step)
        slot_column = "key" if "key" in frame.columns else slot
        if slot_column not in frame.columns or "value" not in frame.columns:
            raise DecodeError(
                f"map {self.name!r} is not a histogram: it needs a slot key and a scalar count",
                hint=f"name the slot field with slot=...; columns are {list(frame.columns)}",
            )
        return histogram_frame(frame, slot=slot_column, count="value", buckets=buckets, step=step)

    def percentiles(
        self, q: Sequence[float] = (50, 90, 99), *, unit: str | None = None, **df_options: Any
    ) -> pd.DataFrame:
        """Percentiles of the buckets as the map's ``.percentiles()`` gave them live (``reads`` in ``unit``)."""
        from ..plot.units import read_percentiles  # matplotlib's: only for those who ask

        found: pd.DataFrame = read_percentiles(percentiles(self.df(**df_options), q=q), unit=unit, names=[self.name])
        return recorded(found)

    def __len__(self) -> int:
        return len(self.df())

    def clear(self) -> None:
        """Change nothing: a recording holds what the map held.

        A notebook replaying its capture sees a map it cleared as cleared
        from the cell that cleared it on, since each cell reads the map as the
        recording saw it when the same cell ended.
        """
        self.program.alive("clear a map of")

    # -- over time ---------------------------------------------------------------

    def history(self, interval: float | None = None, **df_options: Any) -> RecordedHistory:
        """The recorded snapshots of this map.

        Where the recording kept histories a notebook took itself
        (``.history(interval=...)`` while recording), the one whose interval
        is closest to ``interval`` is returned; otherwise the recorder's own
        snapshots. ``decode=`` is applied as for :meth:`df`.
        """
        unknown = set(df_options) - {"decode", "max_rows"}
        if unknown:
            raise ArgumentError(
                f"a recorded history holds its snapshots as they were taken; {', '.join(sorted(unknown))} cannot change them"
            )
        spec = self._history_spec(interval)
        frame = self._table(spec)
        cursor = self.program.capture.cursor
        if cursor is not None and len(frame):
            frame = frame[frame["time"] <= cursor].reset_index(drop=True)
        if df_options.get("decode"):
            frame = apply_decoders(frame, df_options["decode"], named=self.program.capture.decoders)
        return RecordedHistory(self, frame, spec)

    def _history_spec(self, interval: float | None) -> Mapping[str, Any]:
        self.program.alive("read a map of")
        histories: list[Mapping[str, Any]] = list(self._entry.get("histories", []))
        if interval is not None and histories:
            return min(histories, key=lambda h: abs(h["interval"] - interval))
        spec = self._entry.get("snapshots") or (histories[0] if histories else None)
        if spec is None:
            self._last("snapshots")  # raises: the map was not recorded
        assert spec is not None
        return spec

    def _replay(self, kind: str | None, *, speed: float, interval: float, options: dict[str, Any]) -> tuple[str, Replay]:
        kind = kind or ("hist" if self.histogram else "bar")
        if kind in ("heatmap", "line"):
            if kind == "line":
                options.setdefault("value", "rate")
            return kind, Replay(self.history(interval).df(), speed=speed)
        spec = self._history_spec(None)
        return kind, Replay(self._table(spec), speed=speed, snapshots=list(spec["columns"]))

    # -- display -------------------------------------------------------------------

    def _title(self) -> str:
        kind = f"{self.map_type} (histogram)" if self.histogram else self.map_type
        try:
            entries: object = len(self)
        except Exception:  # a display must not raise
            entries = "?"
        size = f" of {self.max_entries}" if self.max_entries is not None else ""
        return f"map {self.name}: {kind} {self.key_type} -> {self.value_type}, {entries}{size} entries (recorded)"

    def _preview(self) -> tuple[str, pd.DataFrame | None]:
        frame = self.df()
        if self.histogram and {"lo", "hi", "count"} <= set(frame.columns):
            return text_histogram(frame), None
        return "", frame.head(_PREVIEW_ROWS)


class RecordedHistory:
    """A recorded map's snapshots over time: :class:`bpfnb.MapHistory`'s reading side."""

    def __init__(self, view: RecordedMap, frame: pd.DataFrame, spec: Mapping[str, Any]) -> None:
        self.view = view
        self.interval: float = spec["interval"]
        self._frame = frame
        self.snapshots = int(frame["time"].nunique()) if len(frame) else 0
        self.running = False

    def df(self) -> pd.DataFrame:
        """Every snapshot kept, oldest first, with its ``time``, deltas and rates."""
        return recorded(self._frame.copy())

    def snapshot(self) -> pd.DataFrame | None:
        """The last snapshot, or None if none was recorded."""
        if not self.snapshots:
            return None
        frame = self._frame
        latest: pd.DataFrame = frame[frame["time"] == frame["time"].max()].reset_index(drop=True)
        return recorded(latest)

    def record(self) -> pd.DataFrame | None:
        """The last snapshot: a recording has no later one to take."""
        return self.snapshot()

    def stop(self) -> None:
        """Nothing to stop: the recording is over."""

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        return f"<recorded history of {self.view.name}: {self.snapshots} snapshots, {len(self)} rows, every {self.interval:g}s>"

    def _repr_html_(self) -> str:
        latest = self.snapshot()
        body = latest.head(10).to_html(max_cols=12) if latest is not None else _html.note("no snapshot was recorded")
        facts = _html.table(["snapshots", "rows", "interval"], [(self.snapshots, len(self), f"{self.interval:g} s")])
        return _html.card(f"history of map {self.view.name}: recorded", facts, body)
