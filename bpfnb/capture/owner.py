"""What a recorded map or stream needs from the recorded program holding it, and from its capture."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .files import CaptureFiles

__all__ = ["RecordingOwner", "RecordingSource"]


class RecordingSource(Protocol):
    """A loaded capture, as its maps and streams read it."""

    files: CaptureFiles
    cursor: pd.Timestamp | None

    @property
    def window(self) -> tuple[pd.Timestamp, pd.Timestamp]: ...

    @property
    def duration(self) -> pd.Timedelta: ...

    @property
    def decoders(self) -> dict[str, Callable[[np.ndarray], Any]]: ...


class RecordingOwner(Protocol):
    """A recorded program, as its maps and streams see it."""

    name: str

    @property
    def capture(self) -> RecordingSource: ...

    def alive(self, doing: str) -> None:
        """Raise if the program was detached (by a notebook replaying the capture)."""
