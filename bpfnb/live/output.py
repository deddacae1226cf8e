"""Where a live plot's output goes: the cell that made it, and the notebook's saved output.

Under ipykernel >= 7.1 a thread's output goes to the latest cell unless the
thread sets its parent, so the drawing thread adopts the message of the cell
that made the widget (anything it prints lands under the plot). A notebook
executed headless (nbclient) keeps a PNG of the last frame: the widget's
display carries ``image/png`` beside the widget view and is updated through
its display id after each cell and when the widget stops.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["CellParent", "SavedOutput"]


class CellParent:
    """The shell and the message of the cell running when this is made, if in a kernel."""

    def __init__(self) -> None:
        try:
            from IPython import get_ipython
        except ImportError:
            self.shell, self.message = None, None
            return
        self.shell = get_ipython()
        get_parent = getattr(self.shell, "get_parent", None)
        self.message = get_parent() if callable(get_parent) else None

    def adopt(self) -> None:
        """Make the calling thread's output go to that cell."""
        if self.shell is None or self.message is None:
            return
        set_thread_parent = getattr(self.shell, "set_thread_parent", None)
        if callable(set_thread_parent):
            set_thread_parent(self.message)
            return
        import ipykernel

        # Before 7.1 ipykernel routed thread output by itself, and set_parent
        # there would move the output of every other thread too.
        if getattr(ipykernel, "version_info", (0,)) >= (7, 1):
            self.shell.set_parent(self.message)


class SavedOutput:
    """A display whose saved copy follows the newest frame.

    Parameters
    ----------
    shell
        The IPython shell (None outside one).
    bundle
        Makes the mime bundle to display: the widget view plus a static copy.
    frame
        Gives the newest frame's bytes, to tell when the saved copy is stale.
    running
        Whether new frames may still come (the saved copy follows cells until then).
    """

    def __init__(
        self,
        shell: Any,
        *,
        bundle: Callable[[], dict[str, Any]],
        frame: Callable[[], bytes],
        running: Callable[[], bool],
    ) -> None:
        self._shell = shell
        self._bundle = bundle
        self._frame = frame
        self._running = running
        self._display_id: str | None = None
        self._published: bytes | None = None

    def show(self) -> None:
        """Display now, and while frames may come refresh the saved copy after every cell."""
        from IPython.display import display

        self._display_id = self._display_id or uuid.uuid4().hex
        display(self._bundle(), raw=True, display_id=self._display_id)
        self._published = self._frame()
        events = getattr(self._shell, "events", None)
        if events is not None and self._running() and self.publish not in events.callbacks.get("post_run_cell", []):
            events.register("post_run_cell", self.publish)

    def publish(self, *_result: Any) -> None:
        """Put the newest frame into the saved output (``post_run_cell`` calls this)."""
        if self._display_id is not None and self._frame() != self._published:
            from IPython.display import update_display

            self._published = self._frame()
            update_display(self._bundle(), raw=True, display_id=self._display_id)
        events = getattr(self._shell, "events", None)
        if not self._running() and events is not None and self.publish in events.callbacks.get("post_run_cell", []):
            events.unregister("post_run_cell", self.publish)
