"""A heatmap figure that knows its cells: a click on the picture names the rows behind that cell.

:func:`bpfnb.plot.heatmap` draws onto a :class:`HeatmapFigure`. In a
notebook the figure shows as a widget (:mod:`bpfnb.plot.interactive`): the
picture, and under it, once a cell is clicked, the frame's rows of that time
and bucket. Headless, it is the same picture as SVG and PNG.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .figure import NotebookFigure, render_svg
from .tables import table_html
from .units import Unit

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["Cell", "HeatmapFigure"]

#: Rows a clicked cell lists at most.
SHOWN_ROWS = 50


@dataclass(frozen=True)
class Cell:
    """One cell of a heatmap: a time column and a bucket, with its rows and its box on the picture.

    ``box`` is ``(left, top, right, bottom)`` as fractions of the picture's
    width and height from its top-left corner.
    """

    time: Any
    lo: float
    hi: float
    rows: pd.DataFrame
    box: tuple[float, float, float, float]


@dataclass
class _Layout:
    ax: Axes
    rows: pd.DataFrame
    time: str
    value: str
    times: pd.Index
    buckets: pd.MultiIndex
    row_of: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    unit: Unit


class HeatmapFigure(NotebookFigure):
    """The figure of :func:`bpfnb.plot.heatmap`; :meth:`cell_at` finds the cell under a point of the picture."""

    _layout: _Layout | None = None
    _view: Any = None

    def bind(self, ax: Axes, rows: pd.DataFrame, **layout: Any) -> None:
        """Remember what was drawn where (the heatmap function calls this)."""
        self._layout = _Layout(ax=ax, rows=rows, **layout)

    @property
    def clickable(self) -> bool:
        """True when the figure holds a heatmap (not "no samples yet")."""
        return self._layout is not None

    def cell_at(self, x: float, y: float) -> Cell | None:
        """The cell under the point ``x``, ``y`` (fractions of the picture from its top-left), or None.

        The figure must have been drawn (rendered) at its current size, as
        the picture the point was taken on was.
        """
        layout = self._layout
        if layout is None:
            return None
        to_data = layout.ax.transData.inverted()
        point = self.transFigure.transform((x, 1.0 - y))
        data_x, data_y = to_data.transform(point)
        column = int(np.searchsorted(layout.x_edges, data_x, side="right")) - 1
        mesh_row = int(np.searchsorted(layout.y_edges, data_y, side="right")) - 1
        if not (0 <= column < len(layout.times) and 0 <= mesh_row < len(layout.row_of)):
            return None
        bucket = int(layout.row_of[mesh_row])
        if bucket < 0:  # a gap between buckets
            return None
        lo = float(layout.buckets.get_level_values("lo")[bucket])
        hi = float(layout.buckets.get_level_values("hi")[bucket])
        when = layout.times[column]
        frame = layout.rows
        picked = frame[(frame[layout.time] == when) & (frame["lo"] == lo) & (frame["hi"] == hi)]
        return Cell(time=when, lo=lo, hi=hi, rows=picked, box=self._box(column, mesh_row))

    def _box(self, column: int, mesh_row: int) -> tuple[float, float, float, float]:
        layout = self._layout
        assert layout is not None
        to_figure = layout.ax.transData + self.transFigure.inverted()
        (left, bottom), (right, top) = to_figure.transform(
            [(layout.x_edges[column], layout.y_edges[mesh_row]), (layout.x_edges[column + 1], layout.y_edges[mesh_row + 1])]
        )
        return (float(left), float(1 - top), float(right), float(1 - bottom))

    def cell_html(self, cell: Cell) -> str:
        """The rows of ``cell`` as an HTML table under a caption naming its time and bucket."""
        layout = self._layout
        assert layout is not None
        when = cell.time.strftime("%H:%M:%S.%f")[:-3] if isinstance(cell.time, pd.Timestamp) else str(cell.time)
        total = cell.rows[layout.value].sum() if len(cell.rows) else 0
        bucket = f"{layout.unit.text(cell.lo)} to {layout.unit.text(cell.hi + 1)}"
        caption = f"{when}, {bucket}: {layout.value} {total:,.0f} in {len(cell.rows):,} rows"
        rows = cell.rows.drop(columns=[layout.time])
        # The bounds are in the heatmap's unit, whatever the frame's name says.
        rows.attrs["units"] = {**rows.attrs.get("units", {}), "lo": str(layout.unit), "hi": str(layout.unit)}
        table = table_html(rows, max_rows=SHOWN_ROWS, index=False)
        return f'<div class="bpfnb-cell"><b>{html.escape(caption)}</b>{table}</div>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(include, exclude)
        if self.clickable:
            from .interactive import HeatmapView, widget_view

            if self._view is None:
                self._view = HeatmapView(self)
            bundle.update(widget_view(self._view))
        return bundle

    def picture(self) -> str:
        """The SVG the interactive view shows (drawn now: its layout is the one :meth:`cell_at` reads)."""
        return render_svg(self)
