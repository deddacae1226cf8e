"""The interactive views of heatmaps and flame graphs, as widgets any Jupyter front end runs.

They are anywidget widgets: their front-end code is a plain ES module in
``bpfnb/plot/js/`` that JupyterLab loads through anywidget's own prebuilt
extension, so bpfnb needs no JavaScript build. A figure puts its view in its
display next to the SVG and PNG of the same picture; a front end without
widgets (an exported notebook, GitHub) shows the picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import anywidget
import traitlets

__all__ = ["Clickable", "FlameView", "Flames", "HeatmapView", "widget_view"]

_JS = Path(__file__).parent / "js"


class Clickable(Protocol):
    """What a heatmap view needs of its figure (:class:`~bpfnb.plot.heatmap_cells.HeatmapFigure`)."""

    def picture(self) -> str: ...

    def cell_at(self, x: float, y: float) -> Any: ...

    def cell_html(self, cell: Any) -> str: ...


class Flames(Protocol):
    """What a flame graph view needs of its figure (:class:`~bpfnb.plot.flame.FlameFigure`)."""

    def tree(self) -> dict[str, Any]: ...

    def colours(self) -> dict[str, str]: ...

    def speedscope(self) -> dict[str, Any]: ...


def widget_view(widget: Any) -> dict[str, Any]:
    """The mime bundle entry that shows ``widget`` in a front end with widgets."""
    return {
        "application/vnd.jupyter.widget-view+json": {"version_major": 2, "version_minor": 1, "model_id": widget.model_id}
    }


class HeatmapView(anywidget.AnyWidget):
    """A heatmap's picture; a click on a cell outlines it and lists its rows under the picture."""

    _esm = _JS / "heatmap.js"
    _svg = traitlets.Unicode("").tag(sync=True)
    _rows = traitlets.Unicode("").tag(sync=True)
    _box = traitlets.List(traitlets.Float()).tag(sync=True)

    def __init__(self, figure: Clickable) -> None:
        super().__init__()
        self._figure = figure
        self._svg = figure.picture()
        self.on_msg(self._on_click)

    def select(self, x: float, y: float) -> bool:
        """Pick the cell under ``x``, ``y`` (fractions of the picture from its top-left); False if none is there."""
        cell = self._figure.cell_at(x, y)
        with self.hold_sync():
            if cell is None:
                self._rows, self._box = '<div class="bpfnb-cell">no bucket there</div>', []
                return False
            self._rows, self._box = self._figure.cell_html(cell), list(cell.box)
        return True

    def _on_click(self, _widget: Any, content: Any, _buffers: Any) -> None:
        try:
            x, y = float(content["x"]), float(content["y"])
        except (KeyError, TypeError, ValueError):  # not a click of ours: nothing to do
            return
        self.select(x, y)


class FlameView(anywidget.AnyWidget):
    """A flame graph to hover, zoom into (click a frame) and search, with an export for speedscope."""

    _esm = _JS / "flame.js"
    _tree = traitlets.Dict().tag(sync=True)
    _colours = traitlets.Dict().tag(sync=True)
    _title = traitlets.Unicode("").tag(sync=True)
    _unit = traitlets.Unicode("samples").tag(sync=True)
    _speedscope = traitlets.Unicode("").tag(sync=True)

    def __init__(self, figure: Flames) -> None:
        export = figure.speedscope()
        super().__init__(
            _tree=figure.tree(), _colours=figure.colours(), _title=export["name"], _speedscope=json.dumps(export)
        )
