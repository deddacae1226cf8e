"""The view on a map its engine reports as frames (bpftrace's): the reading API of every map view.

A reported map is not read from the kernel by bpfnb: its engine hands over
its latest values as a DataFrame (:class:`~bpfnb.engines.base.ReportedMap`).
``df()`` is that frame; histograms are bucket frames (``slot, lo, hi, count``)
that :func:`bpfnb.percentiles` and :func:`bpfnb.plot.hist` read. The last
report stays readable after the program is detached (bpftrace prints its
maps as it exits).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..decode.histogram import percentiles
from ..display import html as _html
from ..engines.base import Owner, ReportedMap
from ..errors import ArgumentError
from .view import PREVIEW_ROWS

if TYPE_CHECKING:
    import pandas as pd

    from ..live.widget import Live
    from .history import MapHistory

__all__ = ["ReportedMapView"]

#: Buckets a histogram's display shows (other maps show PREVIEW_ROWS rows).
HISTOGRAM_ROWS = 64


class ReportedMapView:
    """A map as its engine last reported it.

    ``map_type`` is what fills it (``count``, ``hist``...); ``key_type`` and
    ``value_type`` name its key and value columns.
    """

    countable_in_displays = True
    #: A recording snapshots it: it is a frame the engine printed.
    recordable = True

    def __init__(self, program: Owner, spec: ReportedMap) -> None:
        self.program = program
        self.spec = spec
        self.name = spec.name
        self.map_type = spec.kind
        self.key_type = ", ".join(spec.key_columns) or "-"
        self.value_type = ", ".join(spec.value_columns)
        self.histogram = spec.histogram
        self.value_columns = frozenset(spec.value_columns)

    def df(self) -> pd.DataFrame:
        """The latest report (``attrs["time"]``: when it was taken, seconds since the epoch, or None)."""
        return self.spec.frame()

    def __len__(self) -> int:
        """Rows of the latest report (buckets, for a histogram)."""
        return len(self.spec.frame())

    def percentiles(self, q: Sequence[float] = (50, 90, 99)) -> pd.DataFrame:
        """Percentiles estimated from this histogram's buckets, with their bounds; see :func:`bpfnb.percentiles`."""
        return percentiles(self.df(), q=q)

    def wait(self, seconds: float | None = None) -> ReportedMapView:
        """Block until the engine reports the map again, so that ``df()`` holds what happened until now.

        Waits at most ``seconds`` (default: two report periods and a second);
        returns the view, to chain ``.wait().df()``.
        """
        period = self.spec.period
        if period is None:
            raise ArgumentError(f"map {self.name!r} is reported only when its program ends: there is nothing to wait for")
        self.spec.wait(time.time(), seconds if seconds is not None else 2 * period + 1)
        return self

    def history(self, interval: float | None = None, *, max_rows: int = 100_000) -> MapHistory:
        """Record the reports in the background; see :class:`bpfnb.MapHistory`.

        ``interval`` defaults to the engine's report period: the values change
        only when the map is reported.
        """
        from .history import MapHistory

        every = interval if interval is not None else self.spec.period or 1.0
        return MapHistory(self, interval=every, max_rows=max_rows)

    def live(self, kind: str | None = None, **options: Any) -> Live:
        """A plot that redraws itself; a histogram by default for ``hist``/``lhist`` maps (with p50, p90, p99)."""
        from ..live import live

        return live(self, kind=kind, **options)

    # -- display -----------------------------------------------------------

    def _title(self) -> str:
        taken = self.spec.taken
        when = "not reported yet" if taken is None else f"reported {max(0.0, time.time() - taken):.1f} s ago"
        return f"map {self.name}: {self.map_type} {self.key_type} -> {self.value_type}, {when}"

    def _head(self) -> pd.DataFrame:
        return self.df().head(HISTOGRAM_ROWS if self.histogram else PREVIEW_ROWS)

    def __repr__(self) -> str:
        return f"<bpfnb {self._title()}>\n{self._head().to_string(max_cols=12)}"

    def _repr_html_(self) -> str:
        return _html.card(self._title(), self._head().to_html(max_cols=12))
