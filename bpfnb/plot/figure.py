"""Shared drawing machinery of :mod:`bpfnb.plot`: figures outside pyplot, one lock, PNG.

Figures are plain :class:`matplotlib.figure.Figure` objects with an Agg
canvas, never registered with pyplot, so a background thread can draw while
the user's own ``plt`` figures stay untouched. All drawing and rendering goes
through one module-level lock, because matplotlib's font and text caches and
``rcParams`` are process-wide and ipykernel 7 runs user code beside other
threads.
"""

from __future__ import annotations

import base64
import functools
import io
import threading
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.axes import Axes

__all__ = [
    "DPI",
    "FIGSIZE",
    "NotebookFigure",
    "drawing",
    "frame_png",
    "new_axes",
    "no_data",
    "render_png",
    "render_svg",
    "require",
    "value_column",
]

_LOCK = threading.RLock()
FIGSIZE = (7.0, 3.6)
DPI = 90
_T = TypeVar("_T")


class NotebookFigure(Figure):
    """A Figure with its own Agg canvas that a notebook shows as SVG, with a PNG beside it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        FigureCanvasAgg(self)

    def _repr_png_(self) -> bytes:
        return render_png(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # SVG first, with real text: crisp at any zoom, its labels selectable
        # and found by the browser's search; the PNG for viewers without SVG.
        return {
            "image/svg+xml": render_svg(self),
            "image/png": base64.b64encode(render_png(self)).decode("ascii"),
            "text/plain": repr(self),
        }


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


def render_svg(fig: Figure) -> str:
    """Render ``fig`` to SVG text whose labels are ``<text>`` elements (not glyph outlines).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        Any figure, for example one returned by this module.

    Returns
    -------
    str
        The SVG document.
    """
    with _LOCK, rc_context({"svg.fonttype": "none", "svg.hashsalt": "bpfnb"}):
        if not isinstance(fig.canvas, FigureCanvasAgg):
            FigureCanvasAgg(fig)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
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


def new_axes(
    ax: Axes | None, title: str | None, *, figure_class: type[NotebookFigure] | None = None
) -> tuple[Figure, Axes]:
    """The Axes to draw into: ``ax``, or one on a new notebook figure (of ``figure_class``)."""
    if ax is None:
        fig = (figure_class or NotebookFigure)(figsize=FIGSIZE, layout="constrained")
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
    # A decoded column's raw twin (``errno_raw``) is an id, not a quantity.
    numeric = [c for c in df.select_dtypes("number").columns if c not in exclude and not str(c).endswith("_raw")]
    if not numeric:
        raise ArgumentError(f"no numeric column to plot among {list(df.columns)}; pass value=")
    return str(numeric[-1])
