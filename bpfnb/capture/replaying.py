"""A notebook run from a capture: its ``%%bpf`` cells answered by the programs the capture recorded.

``%bpf replay captures/01-first-probe.zip --fallback`` at the top of a
notebook keeps the notebook live where this kernel can load BPF programs,
and otherwise makes each ``%%bpf NAME`` cell bind ``NAME`` to the program the
capture recorded under that name (the first run of a name gets the first
recording of it, a second run the second). The rest of the notebook reads
those like live programs, and :func:`bpfnb.remember` gives back the values the
recording kept.

A recorded notebook also kept when each of its cells ended, with a snapshot
of every map then; when a replayed cell starts, maps and their histories read
as they were at the end of the same cell in the recording (a map the notebook
cleared later still shows what it held at that point).
"""

from __future__ import annotations

import collections
import os
import platform

import pandas as pd

from ..display import html as _html
from ..errors import BpfnbError
from .layout import cell_digest
from .recorded import Capture, RecordedProgram, load

__all__ = ["ReplayChoice", "Replaying", "live_unavailable"]


def live_unavailable() -> str | None:
    """Why this process cannot load the notebooks' BCC programs, or None if it can."""
    from ..kernel.environment import preflight

    try:
        preflight(needs_tracefs=True, needs_bcc=True)
    except BpfnbError as exc:
        return exc.message
    except OSError:  # no /proc: not Linux
        return f"this machine runs {platform.system()}, and BPF programs run in a Linux kernel"
    return None


class Replaying:
    """The programs of a capture, handed out as a notebook's cells ask for them by name."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self._runs: collections.Counter[str] = collections.Counter()
        self._timeline: list[dict[str, str]] = capture.files.manifest.get("timeline", [])
        self._next = 0

    def reach(self, cell: str) -> None:
        """A cell starts: read maps as the recording saw them when the same cell ended.

        The recorded cell is the next one with the same code (or an earlier
        one, for a cell run again); a cell the recording never ran changes nothing.
        """
        digest = cell_digest(cell)
        order = list(range(self._next, len(self._timeline))) + list(range(self._next))
        for index in order:
            if self._timeline[index]["cell"] == digest:
                self.capture.cursor = pd.Timestamp(self._timeline[index]["time"])
                self._next = index + 1
                return

    def program(self, name: str, source: str) -> RecordedProgram:
        """What ``%%bpf name`` with ``source`` gives when replaying: the recording of that cell's next run."""
        program = self.capture.program(name, self._runs[name])
        self._runs[name] += 1
        program.notice = "" if _same_code(program.source, source) else (
            "This cell's code is not the code that was recorded: what follows is the recording's."
        )
        return program


def _same_code(a: str, b: str) -> bool:
    return a.strip() == b.strip()


class ReplayChoice:
    """What ``%bpf replay`` decided, to show at the top of a notebook."""

    def __init__(self, path: str | os.PathLike[str], *, fallback: bool) -> None:
        self.path = path
        self.reason = live_unavailable() if fallback else "the notebook asked for the recording"
        self.replaying = Replaying(load(path)) if self.reason is not None else None

    def _text(self) -> tuple[str, str]:
        if self.replaying is None:
            return (
                "Live: this kernel can load BPF programs, so the cells below run in it.",
                f"{self.path} holds a recording of this notebook, for machines that cannot.",
            )
        capture = self.capture
        start, _ = capture.window
        kernel = capture.machine["kernel"]
        return (
            f"Replaying {self.path}: {self.reason}",
            f"Each %%bpf cell below shows the program it recorded on {capture.machine['hostname']} "
            f"(Linux {kernel['release']}) on {start:%Y-%m-%d %H:%M} UTC; maps, streams and plots read what it "
            "recorded, and live plots replay it.",
        )

    @property
    def capture(self) -> Capture:
        assert self.replaying is not None, "only a replay has a capture"
        return self.replaying.capture

    def __repr__(self) -> str:
        return "\n".join(self._text())

    def _repr_html_(self) -> str:
        title, text = self._text()
        return _html.card(title, _html.note(text, kind="note" if self.replaying else "ok"))
