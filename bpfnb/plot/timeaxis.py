"""Time axes whose labels never repeat and never mix formats.

matplotlib's concise date formatter writes ``58.0 … 59.5, 03:17, 00.5`` on
one axis (seconds, then a minute, then seconds again), and fixed ``%H:%M:%S``
labels repeat when two ticks fall in the same second. Here the tick step is
chosen first, from round steps (10 ms ... 1 day), and the one format that
step needs is used for every tick: steps of a second or more read
``03:17:58``, shorter steps add exactly the decimals they need
(``03:17:58.5``), steps of a minute or more drop the seconds. The day and
the time zone go into the axis label once.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axis import Axis
from matplotlib.dates import date2num, num2date
from matplotlib.ticker import Formatter

from .units import Unit, ViewLocator

__all__ = ["TimeFormatter", "TimeLocator", "display_times", "set_time_axis", "time_step"]

#: Tick steps in seconds, smallest first.
_STEPS = (
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30,
    60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
)


def time_step(span_seconds: float, *, most: int = 7) -> float:
    """The smallest round step that puts at most ``most`` ticks on ``span_seconds``."""
    for step in _STEPS:
        if span_seconds / step <= most - 1:
            return float(step)
    return 86400.0 * math.ceil(span_seconds / 86400 / (most - 1))


def _format_for(step: float) -> tuple[str, int]:
    """A strftime format and the number of decimals of seconds for ticks ``step`` seconds apart."""
    if step >= 86400:
        return "%b %d", 0
    if step >= 60:
        return "%H:%M", 0
    if step >= 1:
        return "%H:%M:%S", 0
    return "%H:%M:%S", max(1, -math.floor(math.log10(step) + 1e-9))


class TimeLocator(ViewLocator):
    """Ticks on whole multiples of a round step (see :func:`time_step`) on a matplotlib date axis."""

    def __init__(self, tz: dt.tzinfo | None, *, most: int = 7) -> None:
        self.tz = tz
        self.most = most

    def tick_values(self, vmin: float, vmax: float) -> Any:
        low, high = sorted((float(vmin), float(vmax)))
        start, end = num2date(low, tz=self.tz), num2date(high, tz=self.tz)
        step = time_step((end - start).total_seconds(), most=self.most)
        # Whole steps of the local clock: a tick every 15 s falls on :00, :15, :30, :45.
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        offset = (start - midnight).total_seconds()
        first = midnight + dt.timedelta(seconds=math.ceil(offset / step - 1e-9) * step)
        count = int(math.floor((end - first).total_seconds() / step + 1e-9)) + 1
        ticks = [first + dt.timedelta(seconds=i * step) for i in range(max(count, 0))]
        return np.array([date2num(t) for t in ticks])


class TimeFormatter(Formatter):
    """Labels of a :class:`TimeLocator`'s ticks, all in the one format their spacing needs."""

    def __init__(self, tz: dt.tzinfo | None) -> None:
        self.tz = tz

    def __call__(self, x: float, pos: int | None = None) -> str:
        return str(num2date(x, tz=self.tz).strftime("%H:%M:%S"))

    def format_ticks(self, values: Any) -> list[str]:
        values = [float(v) for v in values]
        if len(values) < 2:
            return [self(v) for v in values]
        spacing = min(b - a for a, b in zip(values, values[1:])) * 86400
        # Day numbers are floats: 1 s apart may read 0.99999 s; take the round step it is.
        step = min(_STEPS, key=lambda s: abs(s - spacing) / s) if spacing < 86400 else spacing
        fmt, decimals = _format_for(step)
        labels = []
        for value in values:
            moment = num2date(value, tz=self.tz)
            label = moment.strftime(fmt)
            if decimals:
                fraction = round(moment.microsecond / 1e6, decimals)
                label += f"{fraction:.{decimals}f}"[1:]
            labels.append(label)
        return labels


def display_times(times: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``times`` in this machine's local time zone (tz-aware times), for people to read."""
    if times.tz is None:
        return times
    local = dt.datetime.now().astimezone().tzinfo
    return times.tz_convert(local)


def set_time_axis(axis: Axis, times: pd.Index, *, label: str = "time", most: int = 7) -> None:
    """Round ticks with labels of one format on ``axis``, and the day and zone in its label.

    Times that are plain numbers are seconds: their ticks read ``0``, ``10 s``, ``20 s``.
    """
    if not isinstance(times, pd.DatetimeIndex):
        seconds = Unit("duration")
        axis.set_major_locator(seconds.locator(most=most))
        axis.set_major_formatter(seconds.formatter())
        axis.set_label_text(label)
        return
    tz = times.tz
    axis.set_major_locator(TimeLocator(tz, most=most))
    axis.set_major_formatter(TimeFormatter(tz))
    if len(times):
        first = times.min()
        zone = first.strftime(" %Z") if tz is not None else ""
        axis.set_label_text(f"{label} ({first.strftime('%Y-%m-%d')}{zone})")
    else:
        axis.set_label_text(label)
