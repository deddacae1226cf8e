"""Values a notebook keeps with its recording, and gets back when it replays one: :func:`remember`.

A notebook that compares kernel data with something it did (the pid of a
workload it started) needs that value from the time of the recording when it
runs from a capture. ``pid = bpfnb.remember("dd_pid", dd.pid)`` returns
``dd.pid`` and writes it into every recording running in this process; in a
notebook replaying a capture (``%bpf replay``) it returns the value the
recording kept instead.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ArgumentError, CaptureError

if TYPE_CHECKING:
    from .recorded import Capture

__all__ = ["Notebook", "recording", "remember", "replaying"]


class Notebook(Protocol):
    """A running recording, as :func:`remember` writes to it."""

    def note(self, name: str, value: Any) -> None: ...


_recordings: weakref.WeakSet[Notebook] = weakref.WeakSet()
_replayed: list[Capture] = []


def recording(recorder: Notebook, running: bool) -> None:
    """Tell :func:`remember` that ``recorder`` started (or stopped) recording."""
    if running:
        _recordings.add(recorder)
    else:
        _recordings.discard(recorder)


def replaying(capture: Capture | None) -> None:
    """Tell :func:`remember` which capture the notebook replays (None: it runs live)."""
    _replayed[:] = [] if capture is None else [capture]


def remember(name: str, value: Any) -> Any:
    """``value``, kept in every running recording under ``name``; or, replaying a capture, the value it kept.

    Parameters
    ----------
    name : str
        What to call the value in the capture's ``notes``.
    value : JSON-compatible object
        A number, string, or list or dict of them.

    Raises
    ------
    ArgumentError
        ``value`` cannot be written as JSON.
    CaptureError
        The capture being replayed kept no value called ``name``.
    """
    if _replayed:
        capture = _replayed[0]
        if name not in capture.notes:
            raise CaptureError(
                f"the capture {capture.name!r} kept no value called {name!r}",
                hint=f"it kept: {', '.join(capture.notes) or 'nothing'}; record the notebook again to keep it",
            )
        return capture.notes[name]
    try:
        kept = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"remember({name!r}, ...) keeps numbers, strings, lists and dicts of them, not {value!r}") from exc
    for recorder in list(_recordings):
        recorder.note(name, kept)
    return value
