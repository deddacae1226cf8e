"""Recordings played back in a live widget, at their own pace or faster.

A :class:`Replay` is a :class:`bpfnb.live.Source` whose clock is the
recording's: it starts at the recording's first time and advances ``speed``
recorded seconds per second. Its snapshot is what a live source would have
given at that moment: the rows of a stream (or of a map's history) stamped
until then, or the map's latest snapshot. Once it has shown the end it is
stopped, and the widget keeps that last frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import ArgumentError

if TYPE_CHECKING:
    from ..live.widget import Live

__all__ = ["Replay", "Replayable"]


class Replay:
    """A recorded frame with a ``time`` column, played back from its first time to its last.

    Parameters
    ----------
    frame
        The rows, each stamped in its ``time`` column (UTC).
    speed
        Recorded seconds per second of playback.
    snapshots
        When given, the frame holds whole snapshots (a map's history) and a
        snapshot of the replay is the latest one so far, as these columns.
    counters
        Fixed counters for the widget's status line (``lost``, ``dropped``).
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        speed: float = 1.0,
        snapshots: list[str] | None = None,
        counters: Mapping[str, Any] | None = None,
    ) -> None:
        if not speed > 0:
            raise ArgumentError(f"speed must be a positive number of recorded seconds per second, not {speed!r}")
        self.frame = frame
        self.speed = speed
        self.snapshots = snapshots
        self.counters = dict(counters or {})
        times = frame["time"] if len(frame) else pd.Series([pd.Timestamp(0, tz="UTC")])
        self.start, self.end = times.min(), times.max()
        self._started = time.monotonic()
        self._rows = 0
        self._shown_end = threading.Event()

    @property
    def position(self) -> pd.Timestamp:
        """The recorded moment the replay has reached."""
        elapsed = (time.monotonic() - self._started) * self.speed
        return min(self.start + pd.Timedelta(seconds=elapsed), self.end)

    def snapshot(self) -> pd.DataFrame:
        now = self.position
        shown = self.frame[self.frame["time"] <= now]
        if self.snapshots is not None:
            latest = shown["time"].max() if len(shown) else None
            shown = shown[shown["time"] == latest][self.snapshots] if latest is not None else shown[self.snapshots]
        self._rows = len(shown)
        if now >= self.end:
            self._shown_end.set()
        return shown.reset_index(drop=True)

    def status(self) -> dict[str, Any]:
        return {"rows": self._rows, **self.counters}

    @property
    def stopped(self) -> bool:
        return self._shown_end.is_set()


class Replayable:
    """``.live()`` for recorded maps and streams: the live widget, drawing a :class:`Replay`."""

    name: str

    def _replay(self, kind: str | None, *, speed: float, interval: float, options: dict[str, Any]) -> tuple[str, Replay]:
        """The plot's kind (``kind``, or this object's default) and the replay it draws."""
        raise NotImplementedError

    def live(
        self,
        kind: str | None = None,
        *,
        speed: float = 1.0,
        interval: float = 1.0,
        top: int = 10,
        title: str | None = None,
        **options: Any,
    ) -> Live:
        """The live plot a live object gives, replaying the recording ``speed`` times as fast as it was recorded.

        The options are those of :func:`bpfnb.live.live`; the widget stops
        once it has drawn the end of the recording.
        """
        from ..live import Live

        kind, replay = self._replay(kind, speed=speed, interval=interval, options=options)
        return Live(replay, kind=kind, interval=interval, top=top, title=title or self.name, **options)
