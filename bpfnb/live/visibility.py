"""Whether anyone can see a live plot: its views report it, so that an unseen plot draws nothing.

A :class:`Visibility` widget sits invisibly inside each live plot. Each of
its views in a front end (``visibility.js``) reports whether it is on the
screen of a browser tab that is showing, when that changes and once a second
while it is seen. The plot draws while any view is seen, and also while no
view has reported at all: a notebook run headless (nbclient) has no views,
and its saved output still gets the frames.

The kernel reads these reports only between cells (the front end's messages
wait while a cell runs), so a view's last report stands while a cell runs;
silence counts only while the kernel is idle (:class:`KernelActivity`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import ipywidgets as widgets

__all__ = ["SILENCE", "KernelActivity", "Visibility"]

#: Seconds of silence (while the kernel is idle) after which a view counts as gone.
SILENCE = 3.5


class KernelActivity:
    """When the kernel last finished running a cell, and whether it runs one now (from IPython's events)."""

    def __init__(self, shell: Any) -> None:
        self.busy = False
        self.idle_since = time.monotonic()
        events = getattr(shell, "events", None)
        if events is not None:
            events.register("pre_run_cell", self._started)
            events.register("post_run_cell", self._finished)

    def _started(self, *_info: Any) -> None:
        self.busy = True

    def _finished(self, *_result: Any) -> None:
        self.busy = False
        self.idle_since = time.monotonic()


_activities: dict[int, KernelActivity] = {}
_activities_lock = threading.Lock()


def _activity(shell: Any) -> KernelActivity | None:
    """The one :class:`KernelActivity` of ``shell`` (None outside IPython)."""
    if shell is None:
        return None
    with _activities_lock:
        found = _activities.get(id(shell))
        if found is None:
            found = _activities[id(shell)] = KernelActivity(shell)
        return found


class Visibility(anywidget.AnyWidget):
    """The reports of a live plot's views; :attr:`seen` says whether to draw.

    Parameters
    ----------
    shell
        The IPython shell the plot runs in (None outside one).
    on_seen
        Called (on the kernel's main thread) when a view becomes seen, so
        that the plot draws at once instead of at its next interval.
    """

    _esm = Path(__file__).with_name("visibility.js")

    def __init__(self, shell: Any, *, on_seen: Callable[[], None]) -> None:
        super().__init__(layout=widgets.Layout(width="0px", height="0px", overflow="hidden"))
        self._activity = _activity(shell)
        self._on_seen = on_seen
        self._views: dict[str, tuple[bool, float]] = {}
        self._heard = False
        self._lock = threading.Lock()
        self.on_msg(self._on_report)

    @property
    def reported(self) -> bool:
        """True once any view has reported (even if every view has gone since)."""
        return self._heard

    @property
    def seen(self) -> bool:
        """True while some view can be seen, or while no view has reported yet."""
        if not self.reported:
            return True
        now = time.monotonic()
        activity = self._activity
        with self._lock:
            for seen, at in self._views.values():
                if not seen:
                    continue
                if activity is None:
                    quiet = now - at
                elif activity.busy:
                    return True  # the kernel cannot hear the views now: their last word stands
                else:
                    quiet = now - max(at, activity.idle_since)
                if quiet < SILENCE:
                    return True
        return False

    def report(self, view: str, *, seen: bool, gone: bool = False) -> None:
        """Take one view's report (what its front end sends)."""
        was = self.seen
        with self._lock:
            self._heard = True
            if gone:
                self._views.pop(view, None)
            else:
                self._views[view] = (seen, time.monotonic())
        if seen and not was:
            self._on_seen()

    def _on_report(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and isinstance(content.get("view"), str):
            self.report(content["view"], seen=bool(content.get("seen")), gone=bool(content.get("gone")))
