"""Periodic snapshots of a map, kept as one long time-indexed frame.

``prog["counts"].history(interval=1.0)`` starts a background thread that
takes ``.df()`` every ``interval`` seconds and appends it, stamped with a
``time`` column (UTC), to a bounded store (oldest snapshots are dropped past
``max_rows``). The result is a long frame: one row per key and snapshot.

Numeric value columns get their change since the previous snapshot of the
same key and that change per second: ``delta`` and ``rate`` when the map has
one value column (``value``, or a histogram's ``count``), ``<column>_delta``
and ``<column>_rate`` for each column otherwise (struct values, per-CPU
columns). A key absent from the previous snapshot counts from zero; the
first snapshot has nothing to compare with: NaN there.

It is what live plots draw: ``df()`` and ``snapshot()`` may be called from any
thread. The recorder belongs to its program and stops when the program
detaches. With ``interval=None`` there is no thread: snapshots are taken when
``record()`` is called (a capture's recorder takes them this way).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..decode.keyed import split_columns
from ..display import html as _html
from ..engines.base import Owner, Summary
from ..errors import ArgumentError, BpfnbError
from ..plot.tables import table_html
from ..plot.units import unit_for

__all__ = ["MapHistory", "Recordable"]


class Recordable(Protocol):
    """What a history snapshots: a map view."""

    name: str

    @property
    def program(self) -> Owner:
        """The program the view belongs to (read only, so that any kind of program fits)."""

    @property
    def value_columns(self) -> frozenset[str]:
        """The columns of its frames that hold values, not keys."""

    @property
    def df(self) -> Callable[..., pd.DataFrame]:
        """A fresh snapshot of the map; the history's ``df_options`` are its arguments."""


class MapHistory:
    """A background recorder of a map's snapshots; see the module docstring.

    Parameters
    ----------
    view
        The map view to snapshot.
    interval
        Seconds between snapshots; None takes them only when :meth:`record` is called.
    max_rows
        Rows kept in total; whole oldest snapshots are dropped beyond it.
    **df_options
        Passed to ``view.df()`` (``decode=``, ``percpu=``, ``buckets=``...).
    """

    def __init__(
        self, view: Recordable, *, interval: float | None = 1.0, max_rows: int = 100_000, **df_options: Any
    ) -> None:
        if interval is not None and interval <= 0:
            raise ArgumentError(f"interval must be positive seconds, not {interval!r}")
        if max_rows < 1:
            raise ArgumentError(f"max_rows must be at least 1, not {max_rows!r}")
        if view.program.closed:
            raise BpfnbError(
                f"cannot record map {view.name!r}: its program {view.program.name!r} was detached",
                hint="run the cell that defines it again",
            )
        self.view = view
        self.interval = interval
        self.max_rows = max_rows
        self.df_options = df_options
        self.snapshots = 0
        self.dropped_rows = 0
        #: The columns of ``view.df()`` in the last snapshot (before ``time`` and the deltas).
        self.snapshot_columns: list[str] = []
        self._taps: list[Callable[[pd.DataFrame], None]] = []
        self.error: BaseException | None = None
        self._frames: collections.deque[pd.DataFrame] = collections.deque()
        self._rows = 0
        self._previous: tuple[float, pd.DataFrame] | None = None
        self._units: dict[str, str] = {}  # attrs stay JSON: Parquet keeps them
        self._lock = threading.Lock()
        self._recording = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        if interval is not None:
            self._thread = threading.Thread(target=self._run, name=f"bpfnb-history-{view.name}", daemon=True)
            view.program.own(self)
            self._thread.start()

    # -- recording -----------------------------------------------------------

    def _run(self) -> None:
        assert self.interval is not None
        next_at = time.monotonic()
        while not self._stopping.is_set():
            try:
                self.record()
            except Exception as exc:  # the map went away (program detached): stop, keep the reason
                self.error = exc
                return
            next_at += self.interval
            self._stopping.wait(max(0.0, next_at - time.monotonic()))

    def record(self) -> pd.DataFrame:
        """Take one snapshot now (the thread calls this every ``interval``)."""
        with self._recording:  # deltas need snapshots taken one after the other
            now = time.monotonic()
            frame = self.view.df(**self.df_options)
            stamped = self._with_deltas(frame, now)
            stamped.insert(0, "time", pd.Timestamp.now(tz="UTC"))
            self.snapshot_columns = list(frame.columns)
            with self._lock:
                self._frames.append(stamped)
                self._rows += len(stamped)
                self.snapshots += 1
                while self._rows > self.max_rows and len(self._frames) > 1:
                    dropped = self._frames.popleft()
                    self._rows -= len(dropped)
                    self.dropped_rows += len(dropped)
            for tap in list(self._taps):
                tap(stamped)
        return stamped

    def add_tap(self, tap: Callable[[pd.DataFrame], None]) -> None:
        """Hand every snapshot from now on (stamped, with its deltas) to ``tap``, in the recording thread."""
        self._taps.append(tap)

    def remove_tap(self, tap: Callable[[pd.DataFrame], None]) -> None:
        if tap in self._taps:
            self._taps.remove(tap)

    def _with_deltas(self, frame: pd.DataFrame, now: float) -> pd.DataFrame:
        keys, values = split_columns(frame, self.view.value_columns)
        previous, self._previous = self._previous, (now, frame)
        out = frame.copy()
        one_field = {"lo", "hi"} <= set(frame.columns) or len(self.view.value_columns) == 1
        single = one_field and len(values) == 1
        for column in values:
            if previous is None:
                delta = np.full(len(frame), np.nan)
                elapsed = 1.0
            else:
                elapsed, before = now - previous[0], previous[1]
                if keys:
                    earlier = before[keys + [column]].drop_duplicates(keys)
                    old = frame[keys].merge(earlier, on=keys, how="left", suffixes=("_now", ""))
                else:
                    old = before
                if len(old) == len(frame):
                    # A key that was not there before counted from zero.
                    was = np.nan_to_num(old[column].to_numpy(dtype=np.float64), nan=0.0)
                    delta = frame[column].to_numpy(dtype=np.float64) - was
                else:  # keyless rows that came and went (a queue): nothing to pair
                    delta = np.full(len(frame), np.nan)
            prefix = "" if single else f"{column}_"
            out[f"{prefix}delta"] = delta
            out[f"{prefix}rate"] = delta / elapsed
            # A change of a count is a count, of bytes bytes ("delta" alone would read as a duration).
            unit = unit_for(column, names=[self.view.name] if column in ("value", "count") else [])
            self._units[f"{prefix}delta"] = self._units[f"{prefix}rate"] = str(unit)
        return out

    # -- reading -------------------------------------------------------------

    def df(self) -> pd.DataFrame:
        """Every snapshot kept, oldest first, as one long frame with a ``time`` column."""
        with self._lock:
            frames = list(self._frames)
        if not frames:
            return pd.DataFrame({"time": pd.Series(dtype="datetime64[ns, UTC]")})
        out = pd.concat(frames, ignore_index=True)
        # What the plots of a history need to say what they show.
        out.attrs.update(name=self.view.name, interval=self.interval, units=dict(self._units))
        return out

    def snapshot(self) -> pd.DataFrame | None:
        """The latest snapshot (with its deltas and rates), or None before the first."""
        with self._lock:
            return self._frames[-1] if self._frames else None

    def __len__(self) -> int:
        return self._rows

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        if self._thread is None:
            return not self._stopping.is_set()
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop recording (idempotent); what was recorded stays readable."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _state(self) -> str:
        if self.error is not None:
            return f"stopped ({type(self.error).__name__}: {self.error})"
        return "recording" if self.running else "stopped"

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``."""
        return Summary("history", self.view.name, self._state(), self._rows, cost=f"a snapshot {self._every()}")

    def __repr__(self) -> str:
        return (
            f"<MapHistory of {self.view.name}: {self._state()}, {self.snapshots} snapshots, "
            f"{self._rows} rows, {self._every()}>"
        )

    def _every(self) -> str:
        return "on demand" if self.interval is None else f"every {self.interval:g} s"

    def _repr_html_(self) -> str:
        latest = self.snapshot()
        if latest is not None:
            latest = latest.head(10)
            latest.attrs.update(name=self.view.name, units=dict(self._units))
        body = table_html(latest, max_cols=12) if latest is not None else _html.note("no snapshot yet")
        title = f"history of map {self.view.name}: {self._state()}"
        facts = _html.table(
            ["snapshots", "rows kept", "rows dropped", "interval"],
            [(self.snapshots, self._rows, self.dropped_rows, self._every())],
        )
        return _html.card(title, facts, body)
