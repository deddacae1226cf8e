"""Live plots: an ipywidgets view of a map or stream that redraws in the background.

A :class:`Live` widget draws from a *source*: anything with a thread-safe
``snapshot() -> DataFrame``, ``status() -> dict`` and a ``stopped`` flag
(:class:`Source`). :func:`live` wraps bpfnb's map views and streams into one,
so their ``.live()`` methods are one line::

    def live(self, kind="bar", **options):
        return bpfnb._live.live(self, kind=kind, **options)

Threading, as ipywidgets and ipykernel want it:

- one background thread per widget takes a snapshot, draws it with
  :mod:`bpfnb.plot` (Agg, under that module's lock, no pyplot) and sets the
  Image widget's PNG bytes; the kernel keeps running other cells meanwhile;
- frames are at least :data:`MIN_INTERVAL` apart, widget changes of one frame
  go out together (``hold_sync``), and no ``Output`` context manager is used;
- under ipykernel >= 7.1 a thread's output goes to the latest cell unless the
  thread sets its parent, so the thread adopts the message of the cell that
  made the widget (anything it prints lands under the plot);
- a notebook executed headless (nbclient) keeps a PNG of the last frame: the
  widget's display carries ``image/png`` beside the widget view and is updated
  through its display id after each cell and when the widget stops.
"""

from __future__ import annotations

import base64
import collections
import html
import threading
import time
import uuid
import weakref
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..plot import figure as _figure
from .. import plot
from ..errors import ArgumentError
from .sources import ProbeCost, Source, ViewSource, as_source

__all__ = ["KINDS", "MIN_INTERVAL", "Live", "Source", "live", "running"]

#: The shortest refresh interval in seconds: a plot is not a busy loop.
MIN_INTERVAL = 0.2
#: What a live widget can draw.
KINDS = ("bar", "hist", "heatmap", "line", "table", "flame")
# Margins for figures drawn without a layout engine: a constrained layout
# measures every text in an extra draw, which doubles the cost of a frame.
_MARGINS = {
    "bar": dict(left=0.12, right=0.95, bottom=0.13, top=0.92),
    "hist": dict(left=0.1, right=0.98, bottom=0.25, top=0.92),
    "heatmap": dict(left=0.15, right=0.98, bottom=0.13, top=0.92),
    "line": dict(left=0.1, right=0.98, bottom=0.13, top=0.92),
    "flame": dict(left=0.02, right=0.98, bottom=0.13, top=0.92),
}

_running: weakref.WeakSet[Live] = weakref.WeakSet()


def live(
    obj: Any,
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
        The plot's title; default the object's ``name``.
    **options
        Passed to the plot function (``value=``, ``by=``, ``unit=``...).

    Returns
    -------
    Live
        The widget; it stops with its source or when its program detaches.
    """
    if kind is None:
        kind = ("hist" if getattr(obj, "histogram", False) is True else "bar") if hasattr(obj, "history") else "line"
    _check(kind, interval)
    source = as_source(obj, kind=kind, interval=interval)
    if kind == "line" and getattr(source, "recorder", None) is not None:
        options.setdefault("value", "rate")
    widget = Live(source, kind=kind, interval=interval, top=top, title=title or getattr(obj, "name", None), **options)
    program = getattr(source, "program", None)
    if program is not None and callable(getattr(program, "own", None)):
        program.own(widget)
    return widget


def running() -> list[Live]:
    """The live widgets of this process that have not stopped."""
    return [w for w in list(_running) if w.running]


def _check(kind: str, interval: float) -> None:
    if kind not in KINDS:
        raise ArgumentError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not interval >= MIN_INTERVAL:
        raise ArgumentError(f"interval must be at least {MIN_INTERVAL} s, not {interval!r}")


def _kernel_parent() -> tuple[Any, Any]:
    """The shell and the message of the cell running now, if in a kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None, None
    shell = get_ipython()
    if shell is None or not callable(getattr(shell, "get_parent", None)):
        return shell, None
    return shell, shell.get_parent()


class Live(widgets.VBox):
    """A plot that redraws from its source in the background, with its controls.

    Parameters
    ----------
    source : Source
        Where the data comes from.
    kind : {"bar", "hist", "heatmap", "line", "table", "flame"}
        The plot.
    interval : float, optional
        Seconds between frames, at least :data:`MIN_INTERVAL`.
    top : int, optional
        How many keys, lines or rows to show.
    title : str, optional
        The plot's title.
    **options
        Passed to the plot function of :mod:`bpfnb.plot`.

    Attributes
    ----------
    data : pandas.DataFrame
        The data behind the last frame (the ranked rows of a bar plot, the
        rates of a line plot, the snapshot otherwise).
    frames : int
        Frames drawn so far.
    draw_seconds : collections.deque of float
        How long the last 100 frames took, from snapshot to PNG.
    """

    def __init__(
        self,
        source: Source,
        *,
        kind: str = "bar",
        interval: float = 1.0,
        top: int = 10,
        title: str | None = None,
        **options: Any,
    ) -> None:
        _check(kind, interval)
        self.source, self.kind, self.title, self.options = source, kind, title, options
        self.data = pd.DataFrame()
        self.frames = 0
        self.last_frame_at: float | None = None
        self.last_draw_seconds: float | None = None
        self.draw_seconds: collections.deque[float] = collections.deque(maxlen=100)
        self._png = b""
        self._drawn: tuple[pd.DataFrame, int] | None = None
        self._published_png: bytes | None = None
        self._display_id: str | None = None
        self._error = ""
        self._counters: dict[str, Any] = {}
        self._cost_text = ""
        self._stop_reason = ""
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._ui_lock = threading.RLock()
        self._cost = ProbeCost(getattr(source, "program", None))
        self._shell, self._parent = _kernel_parent()

        self._view: widgets.Image | widgets.HTML = (
            widgets.HTML() if kind == "table" else widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        )
        self._pause = widgets.ToggleButton(description="Pause", icon="pause", tooltip="Stop drawing new frames")
        self._stop_button = widgets.Button(description="Stop", icon="stop", tooltip="End this live plot")
        self._interval = widgets.BoundedFloatText(
            value=interval, min=MIN_INTERVAL, max=3600.0, step=0.5, description="every (s)",
            layout=widgets.Layout(width="150px"), style={"description_width": "initial"},
        )
        self._top = widgets.BoundedIntText(
            value=top, min=1, max=1000, description="top", layout=widgets.Layout(width="120px"),
            style={"description_width": "initial"},
        )
        self._status = widgets.HTML()
        controls = widgets.HBox([self._pause, self._stop_button, self._interval, self._top])
        super().__init__([self._view, controls, self._status])
        self.add_class("bpfnb-live")

        self._pause.observe(self._on_pause_changed, "value")
        self._interval.observe(self._on_control_changed, "value")
        self._top.observe(self._on_control_changed, "value")
        self._stop_button.on_click(lambda _button: self.stop())

        self._update()
        self._thread = threading.Thread(target=self._run, name=f"bpfnb-live-{kind}", daemon=True)
        _running.add(self)
        self._thread.start()

    # -- public controls ----------------------------------------------------

    @property
    def running(self) -> bool:
        """True until :meth:`stop` (or the source stopping) ends the widget."""
        return not self._stopped.is_set()

    @property
    def paused(self) -> bool:
        return bool(self._pause.value)

    @paused.setter
    def paused(self, value: bool) -> None:
        self._pause.value = bool(value)

    def pause(self) -> None:
        """Stop drawing new frames until :meth:`resume`."""
        self.paused = True

    def resume(self) -> None:
        """Draw again, starting now."""
        self.paused = False

    @property
    def interval(self) -> float:
        """Seconds between frames."""
        return float(self._interval.value)

    @interval.setter
    def interval(self, value: float) -> None:
        _check(self.kind, value)
        self._interval.value = value

    @property
    def top(self) -> int:
        """How many keys, lines or rows are shown."""
        return int(self._top.value)

    @top.setter
    def top(self, value: int) -> None:
        self._top.value = value

    @property
    def png(self) -> bytes:
        """The last frame as PNG bytes (empty for a table)."""
        return self._png

    def stop(self, reason: str = "stopped") -> None:
        """End the widget: its thread finishes, the last frame stays. Idempotent."""
        with self._ui_lock:
            first = not self._stopped.is_set()
            if first:
                self._stop_reason = reason
                self._stopped.set()
        self._wake.set()
        # Even when the thread stopped itself first, wait for it: a program
        # detaching must not free maps that the thread may still be reading.
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            self._thread.join(timeout=10)
        if not first:
            return
        if isinstance(self.source, ViewSource):
            self.source.stop()
        with self._ui_lock:
            for control in (self._pause, self._stop_button, self._interval, self._top):
                control.disabled = True
            self._status.value = self._status_html()
        # Off the main thread (the source stopped) the update would carry the
        # message of the cell that made the plot, which nbclient no longer
        # listens to: the next cell's post_run_cell publishes the last frame.
        if threading.current_thread() is threading.main_thread():
            self._publish_saved_output()

    def _on_pause_changed(self, change: dict[str, Any]) -> None:
        self._pause.description, self._pause.icon = ("Resume", "play") if change["new"] else ("Pause", "pause")
        with self._ui_lock:
            self._status.value = self._status_html()
        self._wake.set()

    def _on_control_changed(self, _change: dict[str, Any]) -> None:
        self._wake.set()

    # -- the background thread -------------------------------------------------

    def _run(self) -> None:
        self._adopt_parent()
        while not self._stopped.is_set():
            woken = self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopped.is_set():
                break
            if self.source.stopped:
                self.stop("its source stopped")
                break
            if woken and self.last_frame_at is not None:
                # A control changed: redraw soon, but never faster than the minimum.
                time.sleep(max(0.0, self.last_frame_at + MIN_INTERVAL - time.monotonic()))
            if not self.paused:
                self._update()

    def _adopt_parent(self) -> None:
        if self._shell is None or self._parent is None:
            return
        set_thread_parent = getattr(self._shell, "set_thread_parent", None)
        if callable(set_thread_parent):
            set_thread_parent(self._parent)
            return
        import ipykernel

        # Before 7.1 ipykernel routed thread output by itself, and set_parent
        # there would move the output of every other thread too.
        if getattr(ipykernel, "version_info", (0,)) >= (7, 1):
            self._shell.set_parent(self._parent)

    def _update(self) -> None:
        started = time.monotonic()
        try:
            frame = self.source.snapshot()
            # An unchanged snapshot draws the same picture: an idle map costs
            # one snapshot per interval. Event rates move with the clock.
            unchanged = self.kind != "line" and self._drawn is not None and self._drawn[1] == self.top
            unchanged = unchanged and frame.equals(self._drawn[0])  # type: ignore[index]
            data, png = (self.data, self._png) if unchanged else self._draw(frame)
            counters = self.source.status()
            cost = self._cost.text()
        except Exception as exc:  # noqa: BLE001 - a thread must report, not die silently
            with self._ui_lock:
                self._error = f"{type(exc).__name__}: {exc}"
                self._status.value = self._status_html()
            return
        with self._ui_lock:
            if self._stopped.is_set() and self.frames:
                return
            self._counters, self._cost_text, self._error = counters, cost, ""
            if not unchanged:
                self.data, self._png, self._drawn = data, png, (frame, self.top)
                self.frames += 1
                self.last_frame_at = time.monotonic()
                self.last_draw_seconds = self.last_frame_at - started
                self.draw_seconds.append(self.last_draw_seconds)
            with self._view.hold_sync(), self._status.hold_sync():
                if isinstance(self._view, widgets.HTML):
                    self._view.value = self._table_html()
                elif png != self._view.value:
                    self._view.value = png
                self._status.value = self._status_html()

    def _draw(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, bytes]:
        options = dict(self.options)
        if self.kind in ("bar", "line", "table"):
            options["top"] = self.top
        if self.kind == "table":
            return plot.table(frame, **options), b""
        margins = dict(_MARGINS[self.kind])
        if self.kind == "bar":
            data = plot.top_keys(frame, **_pick(options, "value", "key", "top"))
            longest = int(data["label"].str.len().max()) if len(data) else 0
            margins["left"] = min(0.4, 0.03 + 0.0095 * min(longest, 40))
        elif self.kind == "line":
            data = plot.rates(frame, **_pick(options, "by", "value", "time", "every", "top"))
        elif self.kind == "flame" and options.get("stacks") is not None:
            # The stack map changes with the counts: read it for every frame.
            stacks = options["stacks"]
            options["stacks"] = stacks.df() if callable(getattr(stacks, "df", None)) else stacks
            data = frame if frame.empty else plot.with_stacks(frame, options["stacks"], **_pick(options, "stack_id"))
        else:
            data = frame
        draw = getattr(plot, self.kind)
        return data, _figure.frame_png(draw, frame, margins=margins, title=self.title, **options)

    # -- display -------------------------------------------------------------

    def _table_html(self) -> str:
        return self.data.to_html(max_rows=self.top, border=0, classes="bpfnb-table")

    def _status_html(self) -> str:
        if self._stopped.is_set():
            state = f"■ {self._stop_reason}"
        else:
            state = "❚❚ paused" if self.paused else f"● live, every {self.interval:g} s"
        parts = [state, f"frame {self.frames}"]
        if self.last_draw_seconds is not None:
            parts[-1] += f" ({self.last_draw_seconds * 1e3:.0f} ms)"
        counters = self._counters
        parts += [_counter(name, counters[name]) for name in ("rows", "rate", "lost", "dropped") if name in counters]
        if self._cost_text:
            parts.append(self._cost_text)
        text = " · ".join(parts)
        if self._error:
            text += f' · <span style="color:#b00">{html.escape(self._error)}</span>'
        return f'<span style="font-family:monospace;font-size:90%">{text}</span>'

    def _static_bundle(self) -> dict[str, Any]:
        if self.kind == "table":
            return {"text/html": self._table_html()}
        return {"image/png": base64.b64encode(self._png).decode("ascii")} if self._png else {}

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs) or {}
        bundle.update(self._static_bundle())
        bundle["text/plain"] = repr(self)
        return bundle

    def _ipython_display_(self) -> None:
        from IPython.display import display

        self._display_id = self._display_id or uuid.uuid4().hex
        display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
        self._published_png = self._png
        events = getattr(self._shell, "events", None)
        if events is not None and self.running:
            if self._publish_saved_output not in events.callbacks.get("post_run_cell", []):
                events.register("post_run_cell", self._publish_saved_output)

    def _publish_saved_output(self, *_result: Any) -> None:
        """Put the newest frame into the notebook's saved output (headless runs keep it)."""
        if self._display_id is not None and self._png != self._published_png:
            from IPython.display import update_display

            self._published_png = self._png
            update_display(self._repr_mimebundle_(), raw=True, display_id=self._display_id)
        events = getattr(self._shell, "events", None)
        if not self.running and events is not None:
            if self._publish_saved_output in events.callbacks.get("post_run_cell", []):
                events.unregister("post_run_cell", self._publish_saved_output)

    def __repr__(self) -> str:
        state = "running" if self.running else self._stop_reason
        if self.running and self.paused:
            state = "paused"
        name = f" of {self.title}" if self.title else ""
        return f"<bpfnb.Live {self.kind}{name}: {state}, every {self.interval:g} s, {self.frames} frames>"


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: options[name] for name in names if name in options}


def _counter(name: str, value: Any) -> str:
    if name == "rate":
        return f"{_figure.human(float(value))} ev/s"
    return f"{name} {value:,}"

