"""What a program prints, as a stream of text lines: bpftrace's ``printf`` output.

``prog.stream()`` on a bpftrace program returns a :class:`TextStream`. Its
engine keeps the lines as they arrive (a bounded
:class:`~bpfnb.engines.base.TextOutput`); the stream reads them from the
program's start, and builds columns only when asked: ``time``, ``text`` and
the line's ``key=value`` pairs (:mod:`bpfnb.decode.pairs`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..decode.pairs import text_frame
from ..display import html as _html
from ..engines.base import Owner, TextOutput

if TYPE_CHECKING:
    import pandas as pd

    from ..live.widget import Live

__all__ = ["TextStream"]

# Seconds between two looks at Ctrl-C while waiting.
_WAIT_STEP = 0.2


class TextStream:
    """The lines a program prints, with the reading API of :class:`bpfnb.Stream`.

    It reads what the engine keeps, so that lines printed before it was made
    are in it too; :meth:`stop` freezes it at the lines received so far.

    Examples
    --------
    >>> s = prog.stream()
    >>> s.wait(n=10).df()       # time, text, and pid, comm... from "pid=12 comm=sh"
    """

    kind = "text"

    def __init__(self, program: Owner, source: TextOutput, *, name: str = "printf") -> None:
        self.program = program
        self.name = name
        self._source = source
        self._end: int | None = None  # where stop() froze it

    # -- what it holds --------------------------------------------------------

    @property
    def received(self) -> int:
        """Lines received since the program started (held, or dropped by the engine's bound)."""
        return self._source.received if self._end is None else self._end

    def __len__(self) -> int:
        return max(0, self.received - self._source.dropped)

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver (bpftrace's "Lost N events")."""
        return self._source.lost

    @property
    def dropped(self) -> int:
        """The oldest lines, dropped by the engine to stay within its bound."""
        return self._source.dropped

    @property
    def running(self) -> bool:
        return self._end is None and self._source.running

    @property
    def state(self) -> str:
        """``running`` or ``stopped``."""
        return "running" if self.running else "stopped"

    @property
    def rate(self) -> float:
        """Lines per second over the last few seconds (0 once stopped)."""
        return self._source.rate() if self.running else 0.0

    def df(self) -> pd.DataFrame:
        """The lines held: ``time`` (arrival, UTC), ``text``, then a column per ``key=value`` key."""
        return text_frame(self._held())

    def since(self, start: int) -> tuple[pd.DataFrame, int]:
        """The lines from line ``start`` (counted from the program's start) on, as :meth:`df` shows them,
        and the line the next call starts at (a recording reads the lines this way, a part at a time)."""
        lines, first, _ = self._source.lines(start)
        if self._end is not None:
            lines = lines[: max(0, self._end - first)]
        return text_frame(lines), first + len(lines)

    def _held(self, start: int = 0) -> list[tuple[int, str]]:
        lines, first, _ = self._source.lines(start)
        return lines if self._end is None else lines[: max(0, self._end - first)]

    # -- waiting and stopping ---------------------------------------------------

    def wait(self, n: int | None = None, *, seconds: float | None = None) -> TextStream:
        """Block until ``n`` lines were received in all, ``seconds`` passed, or no more can come.

        Ctrl-C ends the wait early. Returns the stream, to show it.
        """
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            while self.running and (n is None or self.received < n):
                remaining = _WAIT_STEP if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._source.wait(self.received + 1 if n is None else n, min(remaining, _WAIT_STEP))
        except KeyboardInterrupt:
            pass
        return self

    def live(self, kind: str | None = None, **options: Any) -> Live:
        """A live widget of this stream (default: lines per second); see :func:`bpfnb.live.live`."""
        from ..live import live

        return live(self, kind=kind, **options)

    def stop(self) -> None:
        """Take no more lines; those received stay readable. Idempotent."""
        if self._end is None:
            self._end = self._source.received

    # -- display -----------------------------------------------------------------

    def _facts(self) -> list[tuple[str, str]]:
        return [
            ("state", self.state),
            ("lines", f"{len(self):,}"),
            ("received", f"{self.received:,}"),
            ("rate", f"{self.rate:,.0f} lines/s"),
            ("lost (kernel)", f"{self.lost:,}"),
            ("dropped (retention)", f"{self.dropped:,}"),
        ]

    def __repr__(self) -> str:
        return f"<bpfnb.TextStream of {self.program.name!r} " + ", ".join(f"{k} {v}" for k, v in self._facts()) + ">"

    def _repr_html_(self) -> str:
        parts: list[str] = [_html.facts(self._facts())]
        if self.lost:
            parts.append(_html.note(f"{self.lost:,} events lost in the kernel: the buffer was full.", kind="bad"))
        last = text_frame(self._held(max(0, self.received - 5)))
        if len(last):
            parts.append(last.to_html(max_cols=12, index=False))
        return _html.card(f"Printed lines of {self.program.name}", *parts)
