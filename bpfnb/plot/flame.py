"""Flame graphs from folded stacks, drawn with matplotlib rectangles."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.collections import PatchCollection
from matplotlib.patches import Rectangle

from ..errors import ArgumentError
from .figure import drawing, human, new_axes, no_data, require

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["flame", "flame_rectangles", "with_stacks"]


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
    fig, ax = new_axes(ax, title)
    if stacks is not None and not df.empty:
        df, stack = with_stacks(df, stacks, stack_id=stack_id), "folded"
    rects = flame_rectangles(_folded(df, stack, count), sep=sep) if not df.empty else None
    if rects is None or rects.empty:
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
    for name, (x, depth, width) in zip(names, boxes):
        if width >= total * 0.06:
            ax.text(x + total * 0.003, depth + 0.45, name[: int(60 * width / total)], va="center", fontsize=6, clip_on=True)
    ax.set_xlim(0, total)
    ax.set_ylim(0, int(rects["depth"].max()) + 1)
    ax.set_yticks([])
    ax.set_xlabel(f"samples (total {human(total)})")
    return fig


