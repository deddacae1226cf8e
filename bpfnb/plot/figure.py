"""Shared drawing machinery of :mod:`bpfnb.plot`: figures outside pyplot, one lock, PNG.

Figures are plain :class:`matplotlib.figure.Figure` objects with an Agg
canvas, never registered with pyplot, so a background thread can draw while
the user's own ``plt`` figures stay untouched. All drawing and rendering goes
through one module-level lock, because matplotlib's font and text caches and
``rcParams`` are process-wide and ipykernel 7 runs user code beside other
threads.
"""

from __future__ import annotations

import functools
import io
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ..errors import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

__all__ = [
    "DPI",
    "FIGSIZE",
    "HUMAN_TICKS",
    "drawing",
    "frame_png",
    "human",
    "key_columns",
    "new_axes",
    "no_data",
    "render_png",
    "require",
    "row_labels",
    "value_column",
]

_LOCK = threading.RLock()
FIGSIZE = (7.0, 3.6)
DPI = 90
_T = TypeVar("_T")


class _NotebookFigure(Figure):
    """A Figure with its own Agg canvas that a notebook shows as a PNG."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        return render_png(self)


_SHARED_DOC = """
    title : str, optional
        A title for the plot.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
"""


def drawing(func: Callable[..., _T]) -> Callable[..., _T]:
    """Make ``func`` a plot function: it draws under the lock, and its
    docstring ends with the options every plot function shares."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> _T:
        with _LOCK:
            return func(*args, **kwargs)

    wrapper.__doc__ = (func.__doc__ or "").rstrip() + _SHARED_DOC
    return wrapper


def render_png(fig: Figure, *, dpi: float = DPI, compress: int = 6) -> bytes:
    """Render ``fig`` to PNG bytes with the Agg backend, outside pyplot.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Any figure, for example one returned by this module.
    dpi : float, optional
        Resolution of the image.
    compress : int, optional
        zlib level 0-9: lower is faster and bigger (a live plot's frames use 1).

    Returns
    -------
    bytes
        The PNG file's bytes.
    """
    with _LOCK:
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, pil_kwargs={"compress_level": compress})
        return buffer.getvalue()


def frame_png(draw: Callable[..., Figure], df: pd.DataFrame, *, margins: dict[str, float], **options: Any) -> bytes:
    """One frame of a live plot: ``draw(df)`` on a figure with fixed margins, as PNG.

    A constrained layout measures every text in an extra draw, which doubles
    the cost of a frame; a live plot redraws every second, so it sets its
    margins once instead.
    """
    with _LOCK:
        fig = Figure(figsize=FIGSIZE)
        FigureCanvasAgg(fig)
        fig.subplots_adjust(**margins)
        draw(df, ax=fig.add_subplot(), **options)
        return render_png(fig, compress=1)


def new_axes(ax: Axes | None, title: str | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig = _NotebookFigure(figsize=FIGSIZE, layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    if title:
        ax.set_title(title, loc="left", fontsize="medium")
    return fig, ax


def no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes, color="0.5")
    ax.set_xticks([])
    ax.set_yticks([])


def human(x: float) -> str:
    """A short label for a count or bucket bound: 950, 1.5K, 2M, 4G."""
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}" if isinstance(x, float) and not float(x).is_integer() else f"{int(x)}"


#: Axis ticks as short numbers: 200K rather than 200000.
HUMAN_TICKS = FuncFormatter(lambda x, _pos: human(x))


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ArgumentError(
            f"{what} needs the column(s) {missing}; this DataFrame has {list(df.columns)}"
        )


def value_column(df: pd.DataFrame, value: str | None, *, exclude: Sequence[str] = ()) -> str:
    """The column to plot: ``value`` if given, else value/count/the last numeric column."""
    if value is not None:
        require(df, [value], "this plot")
        return value
    for name in ("value", "count"):
        if name in df.columns:
            return name
    numeric = [c for c in df.select_dtypes("number").columns if c not in exclude]
    if not numeric:
        raise ArgumentError(f"no numeric column to plot among {list(df.columns)}; pass value=")
    return str(numeric[-1])


def row_labels(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One text label per row, joining the given key columns."""
    if not columns:
        return pd.Series([str(i) for i in df.index], index=df.index)
    parts = [df[c].astype(str) for c in columns]
    label = parts[0]
    for part in parts[1:]:
        label = label + " / " + part
    return label


def key_columns(df: pd.DataFrame, key: str | Sequence[str] | None, value: str) -> list[str]:
    if key is not None:
        keys = [key] if isinstance(key, str) else list(key)
        require(df, keys, "this plot")
        return keys
    if "key" in df.columns:
        return ["key"]
    # A map's frame may name its key fields; otherwise every other column is the key.
    named = df.attrs.get("key_columns")
    if named:
        return [c for c in named if c in df.columns]
    return [c for c in df.columns if c != value and c not in ("time", "cpu")]


