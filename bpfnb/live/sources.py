"""Where live plots get their data: the :class:`Source` protocol and its adapters.

A source is anything with a thread-safe ``snapshot() -> DataFrame``, a
``status() -> dict`` of counters and a ``stopped`` flag. :func:`as_source`
turns bpfnb's map views (:class:`Viewable`), their history recorders and
streams into one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from ..engines.base import Owner
from ..errors import ArgumentError

__all__ = ["COUNTERS", "OVER_TIME", "Recording", "Source", "ViewSource", "Viewable", "as_source"]

#: Kinds of plot that draw a map's values over time, from its history recorder.
OVER_TIME = ("heatmap", "line")
#: Counters a view may have (streams do), shown in the status line.
COUNTERS = ("rate", "lost", "dropped")


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


class Recording(Protocol):
    """A map's history recorder, as a live plot over time uses it."""

    @property
    def running(self) -> bool: ...

    def df(self) -> pd.DataFrame: ...

    def stop(self) -> None: ...


class Viewable(Protocol):
    """What ``.live()`` is called on: a map view or a stream of a program."""

    name: str

    @property
    def program(self) -> Owner:
        """The program the view belongs to (read only, so that any kind of program fits)."""

    def df(self) -> pd.DataFrame: ...


class ViewSource:
    """A map view, a history recorder or a stream seen as a :class:`Source`."""

    def __init__(
        self, view: Viewable, *, take: Callable[[], pd.DataFrame], recorder: Recording | None = None
    ) -> None:
        self.view = view
        #: The history recorder made for this source, stopped with it.
        self.recorder = recorder
        self.program = view.program
        self._take = take
        self._rows = 0

    def snapshot(self) -> pd.DataFrame:
        frame = self._take()
        self._rows = len(frame)
        # Plots name what they draw after the map or stream.
        frame.attrs.setdefault("name", self.view.name)
        return frame

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = {"rows": self._rows}
        for name in COUNTERS:
            value = getattr(self.view, name, None)  # only streams count these
            if isinstance(value, (int, float)):
                found[name] = value
        return found

    @property
    def stopped(self) -> bool:
        if self.program.closed or (self.recorder is not None and not self.recorder.running):
            return True
        running = getattr(self.view, "running", True)  # a stream stops by itself, a map view does not
        return running is False

    def stop(self) -> None:
        if self.recorder is not None:
            self.recorder.stop()


def as_source(obj: Viewable | Source, *, kind: str, interval: float) -> Source:
    """``obj`` itself if it is a :class:`Source`, else a :class:`ViewSource` of it.

    Plots over time of an object with ``.history()`` (a map) draw from a
    history recorder started for them.
    """
    if isinstance(obj, Source):
        return obj
    if not callable(getattr(obj, "df", None)) or not hasattr(obj, "program"):
        raise ArgumentError(f"cannot plot {type(obj).__name__} live: it is not a map, a stream or a Source")
    history: Callable[..., Recording] | None = getattr(obj, "history", None)
    if kind in OVER_TIME and history is not None:
        recorder = history(interval=interval)
        return ViewSource(obj, take=recorder.df, recorder=recorder)
    if kind == "heatmap":
        raise ArgumentError(f"a heatmap draws a histogram over time; {type(obj).__name__} has no .history()")
    return ViewSource(obj, take=obj.df)
