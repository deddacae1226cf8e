"""The live widget: a plot of a map or stream that redraws in the background, with its controls.

One background thread per widget takes a snapshot of its source
(:mod:`bpfnb.live.sources`), draws it (:mod:`bpfnb.live.drawing`: Agg, under
the plot module's lock, no pyplot) and sets the Image widget's PNG bytes; the
kernel keeps running other cells meanwhile. Frames are at least
:data:`MIN_INTERVAL` apart, widget changes of one frame go out together
(``hold_sync``), and no ``Output`` context manager is used. Where output goes
is :mod:`bpfnb.live.output`'s job; the status line is :mod:`bpfnb.live.status`'s.
A plot that no one can see (scrolled away, its tab hidden or closed) draws
nothing until someone can again (:mod:`bpfnb.live.visibility`).
"""

from __future__ import annotations

import base64
import collections
import threading
import time
import weakref
from typing import Any

import ipywidgets as widgets
import pandas as pd

from ..engines.base import Summary
from ..plot.tables import table_html
from .drawing import MIN_INTERVAL, check_kind, draw_frame, frame_summary
from .output import CellParent, SavedOutput
from .sources import Source, ViewSource
from .status import ProgramCost, status_html
from .visibility import Visibility

__all__ = ["Live", "running"]

_running: weakref.WeakSet[Live] = weakref.WeakSet()


def running() -> list[Live]:
    """The live widgets of this process that have not stopped."""
    return [w for w in list(_running) if w.running]


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
        The plot's title; default: what the plot function makes of the data
        (``counts: count per comm``).
    name : str, optional
        What the widget shows, for its text (``<bpfnb.Live bar of counts ...>``);
        default the title.
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
        name: str | None = None,
        **options: Any,
    ) -> None:
        check_kind(kind, interval)
        self.source, self.kind, self.title, self.options = source, kind, title, options
        self.name = name or title
        self.data = pd.DataFrame()
        self.frames = 0
        self.last_frame_at: float | None = None
        self.last_draw_seconds: float | None = None
        self.draw_seconds: collections.deque[float] = collections.deque(maxlen=100)
        self._png = b""
        self._drawn: tuple[pd.DataFrame, int] | None = None
        self._error = ""
        self._counters: dict[str, Any] = {}
        self._cost_text = ""
        self._summary = ""
        self._stop_reason = ""
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._ui_lock = threading.RLock()
        self._cost = ProgramCost(source.program if isinstance(source, ViewSource) else None)
        self._cell = CellParent()
        self._saved = SavedOutput(
            self._cell.shell, bundle=self._repr_mimebundle_, frame=lambda: self._png, running=lambda: self.running
        )

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
        self._visibility = Visibility(self._cell.shell, on_seen=self._wake.set)
        controls = widgets.HBox([self._pause, self._stop_button, self._interval, self._top])
        super().__init__([self._view, controls, self._status, self._visibility])
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
    def seen(self) -> bool:
        """False while no view of the plot can be seen (it then draws nothing); see :mod:`bpfnb.live.visibility`."""
        return self._visibility.seen

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
        check_kind(self.kind, value)
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
            self._saved.publish()

    def _on_pause_changed(self, change: dict[str, Any]) -> None:
        self._pause.description, self._pause.icon = ("Resume", "play") if change["new"] else ("Pause", "pause")
        with self._ui_lock:
            self._status.value = self._status_html()
        self._wake.set()

    def _on_control_changed(self, _change: dict[str, Any]) -> None:
        self._wake.set()

    # -- the background thread -------------------------------------------------

    def _run(self) -> None:
        self._cell.adopt()
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
            if not self.paused and self.seen:
                self._update()

    def _update(self) -> None:
        started = time.monotonic()
        try:
            frame = self.source.snapshot()
            # An unchanged snapshot draws the same picture: an idle map costs
            # one snapshot per interval. Event rates move with the clock.
            unchanged = self.kind != "line" and self._drawn is not None and self._drawn[1] == self.top
            unchanged = unchanged and frame.equals(self._drawn[0])  # type: ignore[index]
            data, png = (self.data, self._png) if unchanged else self._draw(frame)
            summary = self._summary if unchanged else frame_summary(self.kind, frame, self.options)
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
            self._counters, self._cost_text, self._summary, self._error = counters, cost, summary, ""
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
        return draw_frame(self.kind, frame, top=self.top, title=self.title, options=self.options)

    # -- display -------------------------------------------------------------

    def _table_html(self) -> str:
        return table_html(self.data, max_rows=self.top)

    def _status_html(self) -> str:
        if self._stopped.is_set():
            state = f"■ {self._stop_reason}"
        else:
            state = "❚❚ paused" if self.paused else f"● live, every {self.interval:g} s"
        return status_html(
            state=state,
            frames=self.frames,
            draw_seconds=self.last_draw_seconds,
            counters=self._counters,
            cost=self._cost_text,
            error=self._error,
            summary=self._summary,
        )

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
        self._saved.show()

    def _state(self) -> str:
        if not self.running:
            return self._stop_reason
        return "paused" if self.paused else "running"

    def summary(self) -> Summary:
        """Its row in ``%bpf ls``: what it draws, and what drawing costs."""
        name = self.source.view.name if isinstance(self.source, ViewSource) else self.name or ""
        cost = ""
        if self.draw_seconds and self.running and not self.paused:
            seconds = sum(self.draw_seconds) / len(self.draw_seconds)
            cost = f"{seconds * 1e3:.0f} ms a frame ({seconds / self.interval:.1%} of a core)"
        return Summary(f"live {self.kind}", name, self._state(), self._counters.get("rows"), cost=cost)

    def __repr__(self) -> str:
        name = f" of {self.name}" if self.name else ""
        return f"<bpfnb.Live {self.kind}{name}: {self._state()}, every {self.interval:g} s, {self.frames} frames>"
