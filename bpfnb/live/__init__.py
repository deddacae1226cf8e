"""Live plots: ipywidgets views of maps and streams that redraw themselves in the background.

:func:`live` is what ``.live()`` on a map view or a stream calls::

    prog["counts"].live()            # bars of the top keys, redrawn every second
    prog["dist"].live("heatmap")     # a histogram over time
    prog.stream("events").live()     # events per second
"""

from __future__ import annotations

from typing import Any

from .drawing import KINDS, MIN_INTERVAL, check_kind
from .sources import Source, Viewable, ViewSource, as_source
from .widget import Live, running

__all__ = ["KINDS", "MIN_INTERVAL", "Live", "Source", "live", "running"]


def live(
    obj: Viewable | Source,
    *,
    kind: str | None = None,
    interval: float = 1.0,
    top: int = 10,
    title: str | None = None,
    **options: Any,
) -> Live:
    """A live widget plotting ``obj`` (a map view, a stream or a :class:`Source`).

    Parameters
    ----------
    obj : object
        Something with ``.df()`` (and ``.history()`` for maps over time), or a
        :class:`Source`.
    kind : {"bar", "hist", "heatmap", "line", "table", "flame"}, optional
        The plot; see :mod:`bpfnb.plot` for each one's options. Default:
        ``hist`` for a histogram map, ``bar`` for other maps, ``line``
        (events per second) for a stream.
    interval : float, optional
        Seconds between frames, at least :data:`MIN_INTERVAL`.
    top : int, optional
        How many keys, lines or rows to show.
    title : str, optional
        The plot's title; default: the object's name and what is plotted
        (``counts: count per comm``).
    **options
        Passed to the plot function (``value=``, ``by=``, ``unit=``...).

    Returns
    -------
    Live
        The widget; it stops with its source or when its program detaches.
    """
    if kind is None:
        kind = ("hist" if getattr(obj, "histogram", False) is True else "bar") if hasattr(obj, "history") else "line"
    check_kind(kind, interval)
    source = as_source(obj, kind=kind, interval=interval)
    if not isinstance(source, ViewSource):
        return Live(source, kind=kind, interval=interval, top=top, title=title, **options)
    if kind == "line" and source.recorder is not None:
        options.setdefault("value", "rate")
    widget = Live(source, kind=kind, interval=interval, top=top, title=title, name=source.view.name, **options)
    source.program.own(widget)
    return widget
