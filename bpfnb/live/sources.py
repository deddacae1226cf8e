"""Where live plots get their data: the :class:`Source` protocol and its adapters.

A source is anything with a thread-safe ``snapshot() -> DataFrame``, a
``status() -> dict`` of counters and a ``stopped`` flag. :func:`as_source`
turns bpfnb's map views, their history recorders and streams into one, and
:class:`ProbeCost` reads what the program behind a source costs the kernel.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol, runtime_checkable

import pandas as pd

__all__ = ["OVER_TIME", "ProbeCost", "Source", "ViewSource", "as_source"]

#: Kinds of plot that draw a map's values over time, from its history recorder.
OVER_TIME = ("heatmap", "line")


@runtime_checkable
class Source(Protocol):
    """What a live widget draws from; every method may be called from any thread."""

    def snapshot(self) -> pd.DataFrame:
        """The data now, as a fresh DataFrame."""

    def status(self) -> dict[str, Any]:
        """Counters for the status line: any of rows, rate, lost, dropped."""

    @property
    def stopped(self) -> bool:
        """True once the source will not change any more."""


class ViewSource:
    """A map view, a history recorder or a stream seen as a :class:`Source`."""

    def __init__(self, view: Any, *, take: Callable[[], pd.DataFrame], recorder: Any = None) -> None:
        self.view = view
        #: The history recorder made for this source, stopped with it.
        self.recorder = recorder
        self.program = getattr(view, "program", None)
        self._take = take
        self._rows = 0

    def snapshot(self) -> pd.DataFrame:
        frame = self._take()
        self._rows = len(frame)
        return frame

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = {"rows": self._rows}
        for name in ("rate", "lost", "dropped"):
            value = getattr(self.view, name, None)
            if isinstance(value, (int, float)):
                found[name] = value
        return found

    @property
    def stopped(self) -> bool:
        if self.program is not None and getattr(self.program, "closed", False):
            return True
        return any(_ended(obj) for obj in (self.view, self.recorder) if obj is not None)

    def stop(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()


def _ended(obj: Any) -> bool:
    """Whether a stream or recorder says it stopped (``stopped`` or ``running``)."""
    return getattr(obj, "stopped", False) is True or getattr(obj, "running", True) is False


def as_source(obj: Any, *, kind: str, interval: float) -> Source:
    """``obj`` itself if it is a :class:`Source`, else a :class:`ViewSource` of it.

    Plots over time of an object with ``.history()`` (a map) draw from a
    history recorder started for them.
    """
    if isinstance(obj, Source):
        return obj
    if not callable(getattr(obj, "df", None)):
        raise TypeError(f"cannot plot {type(obj).__name__} live: it has no .df() and is not a Source")
    if kind in OVER_TIME and callable(getattr(obj, "history", None)):
        recorder = obj.history(interval=interval)
        return ViewSource(obj, take=recorder.df, recorder=recorder)
    if kind == "heatmap":
        raise TypeError(f"a heatmap draws a histogram over time; {type(obj).__name__} has no .history()")
    return ViewSource(obj, take=obj.df)


class ProbeCost:
    """The program's own CPU share and run time, from the kernel's run-time stats."""

    def __init__(self, program: Any) -> None:
        self.program = program
        self._last: tuple[float, int, int] | None = None

    def text(self) -> str:
        stats = getattr(self.program, "stats", None)
        if not callable(stats) or getattr(self.program, "closed", True):
            return ""
        frame = stats()
        if not frame.attrs.get("stats_enabled", True):
            return "probe cost: stats off"
        now = (time.monotonic(), int(frame["run_time_ns"].sum()), int(frame["run_count"].sum()))
        last, self._last = self._last, now
        if last is None or now[2] <= last[2]:
            return ""
        share = (now[1] - last[1]) / 1e9 / (now[0] - last[0])
        per_run = (now[1] - last[1]) / (now[2] - last[2])
        return f"probe {share:.2%} CPU, {per_run:.0f} ns/run"
