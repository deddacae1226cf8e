"""Flame graphs from folded stacks: a picture, an interactive view, and a speedscope file.

:func:`flame` draws with matplotlib rectangles onto a :class:`FlameFigure`;
in a notebook the figure shows as an interactive flame graph (hover, click to
zoom, search; :mod:`bpfnb.plot.interactive`), headless as the picture. Its
:meth:`FlameFigure.speedscope` writes the same stacks in speedscope's file
format, which speedscope opens as it is.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle

from ..errors import ArgumentError
from .figure import NotebookFigure, drawing, new_axes, no_data, require
from .units import COUNT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FlameFigure", "flame", "flame_rectangles", "flame_tree", "with_stacks"]


def with_stacks(
    df: pd.DataFrame, stacks: pd.DataFrame, *, stack_id: str | Sequence[str] = "stack_id"
) -> pd.DataFrame:
    """``df`` with a ``folded`` column: its stack ids looked up in a stack-trace map's frame.

    Parameters
    ----------
    df : pandas.DataFrame
        Counts keyed by stack id (a map) or events carrying stack ids (a stream).
    stacks : pandas.DataFrame
        A ``BPF_STACK_TRACE`` map's frame, with ``stack_id`` and ``folded``.
    stack_id : str or sequence of str, optional
        The column(s) of ``df`` holding stack ids. Several columns are joined
        in order, outermost first: ``("user_stack_id", "kernel_stack_id")``.
        A negative id (the kernel could not take the stack) reads ``[no stack]``.

    Returns
    -------
    pandas.DataFrame
    """
    columns = [stack_id] if isinstance(stack_id, str) else list(stack_id)
    require(df, columns, "stack ids")
    require(stacks, ["stack_id", "folded"], "a stack-trace frame")
    names = dict(zip(stacks["stack_id"].astype("int64"), stacks["folded"]))
    parts = [df[c].astype("int64").map(lambda i: names.get(i, "[no stack]" if i < 0 else "[lost]")) for c in columns]
    folded = parts[0]
    for part in parts[1:]:
        folded = folded + ";" + part
    return df.assign(folded=folded.to_numpy(dtype=object))


def _folded(df: pd.DataFrame, stack: str | None, count: str | None) -> pd.Series:
    """Counts per folded stack string, whatever the frame calls its columns."""
    if stack is None:
        stack = next((c for c in ("stack", "folded") if c in df.columns), None)
        if stack is None:
            raise ArgumentError(f"no folded-stack column ('stack' or 'folded') in {list(df.columns)}; pass stack=")
    if count is None:
        count = next((c for c in ("count", "value") if c in df.columns), None)
    require(df, [stack] + ([count] if count else []), "a flame graph")
    weights = df[count] if count else pd.Series(1, index=df.index)
    return weights.groupby(df[stack].astype(str)).sum()


def flame_rectangles(folded: pd.Series, *, sep: str = ";") -> pd.DataFrame:
    """Lay out a flame graph: one rectangle per merged frame.

    Parameters
    ----------
    folded : pandas.Series
        Counts indexed by folded stack (root first, frames joined by ``sep``).
    sep : str, optional
        The frame separator.

    Returns
    -------
    pandas.DataFrame
        Columns ``name``, ``depth``, ``x`` (start) and ``width``, in count units.
    """
    rows: list[tuple[str, int, float, float]] = []
    open_frames: list[tuple[str, float]] = []
    x = 0.0

    def close_to(depth: int) -> None:
        while len(open_frames) > depth:
            name, start = open_frames.pop()
            rows.append((name, len(open_frames), start, x - start))

    for stack, weight in sorted(folded.items()):
        if weight <= 0:
            continue
        frames = [f for f in str(stack).split(sep) if f] or ["[unknown]"]
        common = 0
        while common < min(len(frames), len(open_frames)) and open_frames[common][0] == frames[common]:
            common += 1
        close_to(common)
        open_frames.extend((name, x) for name in frames[common:])
        x += float(weight)
    close_to(0)
    return pd.DataFrame(rows, columns=["name", "depth", "x", "width"])


def flame_tree(folded: pd.Series, *, sep: str = ";") -> dict[str, Any]:
    """Folded stacks as a tree: ``{"n": name, "v": weight, "c": [children]}``, the root named ``all``.

    Children are sorted by name, as :func:`flame_rectangles` lays them out.
    """
    root: dict[str, Any] = {"n": "all", "v": 0.0, "c": {}}
    for stack, weight in folded.items():
        if weight <= 0:
            continue
        node = root
        node["v"] += float(weight)
        for name in [f for f in str(stack).split(sep) if f] or ["[unknown]"]:
            node = node["c"].setdefault(name, {"n": name, "v": 0.0, "c": {}})
            node["v"] += float(weight)

    def ordered(node: dict[str, Any]) -> dict[str, Any]:
        children = [ordered(node["c"][name]) for name in sorted(node["c"])]
        return {"n": node["n"], "v": node["v"], "c": children} if children else {"n": node["n"], "v": node["v"]}

    return ordered(root)


def _frame_colour(name: str) -> tuple[float, float, float]:
    """A stable warm colour per function name, as flamegraph.pl picks them."""
    h = zlib.crc32(name.encode())
    return (0.8 + 0.2 * ((h & 0xFF) / 255), 0.3 + 0.5 * (((h >> 8) & 0xFF) / 255), 0.1 + 0.2 * (((h >> 16) & 0xFF) / 255))


@drawing
def flame(
    df: pd.DataFrame,
    *,
    stack: str | None = None,
    count: str | None = None,
    stacks: pd.DataFrame | None = None,
    stack_id: str | Sequence[str] = "stack_id",
    sep: str = ";",
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A flame graph from folded stacks (``"root;child;leaf"``) and their counts.

    Parameters
    ----------
    df : pandas.DataFrame
        A stack-trace map's frame, or events carrying a folded stack.
    stack : str, optional
        The folded-stack column; default ``stack`` or ``folded``.
    count : str, optional
        The weight column; default ``count`` or ``value``, else one per row.
    stacks : pandas.DataFrame, optional
        A stack-trace map's frame to name the stack ids of ``df`` with (see
        :func:`with_stacks`), for counts or events that carry ids only.
    stack_id : str or sequence of str, optional
        With ``stacks``: the column(s) of ``df`` holding stack ids.
    sep : str, optional
        The frame separator.
    """
    fig, ax = new_axes(ax, title, figure_class=FlameFigure)
    if stacks is not None and not df.empty:
        df, stack = with_stacks(df, stacks, stack_id=stack_id), "folded"
    folded = _folded(df, stack, count) if not df.empty else pd.Series(dtype=float)
    rects = flame_rectangles(folded, sep=sep)
    if rects.empty:
        no_data(ax, "stacks")
        return fig
    total = float(rects.loc[rects["depth"] == 0, "width"].sum())
    # Frames narrower than a pixel or so only add ink and drawing time.
    rects = rects[rects["width"] >= total * 0.001]
    names = rects["name"].astype(str).tolist()
    boxes = rects[["x", "depth", "width"]].to_numpy(dtype=float)
    patches = [Rectangle((x, depth), width, 0.95) for x, depth, width in boxes]
    ax.add_collection(PatchCollection(patches, facecolors=[_frame_colour(n) for n in names],
                                      edgecolors="white", linewidths=0.3))
    # Characters that fit in a frame: the axes' width in points over a character's (~0.6 em at 7 pt).
    width_chars = ax.get_position().width * fig.get_figwidth() * 72 / (7 * 0.6)
    for name, (x, depth, width) in zip(names, boxes):
        room = int(width_chars * width / total) - 1
        if room >= 4:
            label = name if len(name) <= room else name[: room - 1] + "…"
            ax.text(x + total * 0.003, depth + 0.45, label, va="center", fontsize=7, clip_on=True)
    ax.set_xlim(0, total)
    ax.set_ylim(0, int(rects["depth"].max()) + 1)
    ax.set_yticks([])
    ax.set_xlabel(f"samples (total {COUNT.text(total)})")
    if isinstance(fig, FlameFigure):
        fig.bind(folded, sep=sep, title=title or "flame graph")
    return fig


class FlameFigure(NotebookFigure):
    """The figure of :func:`flame`: in a notebook an interactive flame graph, and a speedscope export."""

    folded: pd.Series | None = None
    _sep = ";"
    _title = "flame graph"
    _view: Any = None

    def bind(self, folded: pd.Series, *, sep: str, title: str) -> None:
        """Remember the stacks drawn (the flame function calls this)."""
        self.folded, self._sep, self._title = folded, sep, title

    def tree(self) -> dict[str, Any]:
        """The stacks as the interactive view gets them (see :func:`flame_tree`)."""
        return flame_tree(self.folded if self.folded is not None else pd.Series(dtype=float), sep=self._sep)

    def colours(self) -> dict[str, str]:
        """Each function's colour, the same in the picture and in the interactive view."""
        names: set[str] = set()
        for stack in (self.folded.index if self.folded is not None else []):
            names.update(str(stack).split(self._sep))
        return {name: to_hex(_frame_colour(name)) for name in names if name}

    def speedscope(self, path: str | Path | None = None) -> dict[str, Any]:
        """The stacks in speedscope's file format (a sampled profile); written to ``path`` if given.

        speedscope (https://www.speedscope.app, or ``npx speedscope FILE``)
        opens the file as it is: its "Left Heavy" view is this flame graph.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            Where to write the JSON file.

        Returns
        -------
        dict
            The file's content.
        """
        frames: dict[str, int] = {}
        samples: list[list[int]] = []
        weights: list[float] = []
        for stack, weight in (self.folded.items() if self.folded is not None else []):
            if weight <= 0:
                continue
            names = [f for f in str(stack).split(self._sep) if f] or ["[unknown]"]
            samples.append([frames.setdefault(name, len(frames)) for name in names])  # root first
            weights.append(float(weight))
        content = {
            "$schema": "https://www.speedscope.app/file-format-schema.json",
            "shared": {"frames": [{"name": name} for name in frames]},
            "profiles": [
                {
                    "type": "sampled",
                    "name": self._title,
                    "unit": "none",
                    "startValue": 0,
                    "endValue": sum(weights),
                    "samples": samples,
                    "weights": weights,
                }
            ],
            "name": self._title,
            "activeProfileIndex": 0,
            "exporter": "bpfnb",
        }
        if path is not None:
            Path(path).write_text(json.dumps(content))
        return content

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(include, exclude)
        if self.folded is not None and len(self.folded):
            from .interactive import FlameView, widget_view

            if self._view is None:
                self._view = FlameView(self)
            bundle.update(widget_view(self._view))
        return bundle


