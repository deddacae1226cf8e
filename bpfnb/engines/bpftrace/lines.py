"""The text a bpftrace script prints, kept as lines with their arrival times.

One thread (the reader of bpftrace's output) adds text; any thread reads. A
``printf`` may print several lines at once, or part of one that the next
``printf`` finishes: lines are reassembled here. The log is bounded; the
oldest lines go first, and are counted.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time

__all__ = ["LineLog"]

#: Seconds over which :meth:`LineLog.rate` counts arrivals.
RATE_WINDOW = 5.0
# How often, at most, an arrival count is noted for the rate.
_RATE_STEP_NS = 250_000_000


class LineLog:
    """Lines received so far, with the events the kernel lost; a :class:`~bpfnb.engines.base.TextOutput`.

    Parameters
    ----------
    max_lines
        Lines kept; beyond it the oldest are dropped.
    """

    def __init__(self, max_lines: int = 1_000_000) -> None:
        self._changed = threading.Condition()
        self._lines: collections.deque[tuple[int, str]] = collections.deque(maxlen=max_lines)
        self._first = 0  # the index of _lines[0] among every line ever received
        self._partial: tuple[int, str] | None = None  # (arrival, text) of a line still unfinished
        # (time, lines received by then), from the log's start, for the rate.
        self._arrivals: collections.deque[tuple[int, int]] = collections.deque([(time.time_ns(), 0)], maxlen=64)
        self._lost = 0
        self._open = True

    # -- the writer ---------------------------------------------------------------

    def add(self, text: str, now_ns: int | None = None) -> None:
        """Take printed text: whole lines, or the start or end of one."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        with self._changed:
            started = now_ns
            if self._partial is not None:
                started, head = self._partial
                text = head + text
            *complete, rest = text.split("\n")
            for line in complete:
                self._append(started, line)
                started = now_ns
            self._partial = (started, rest) if rest else None
            if now_ns - self._arrivals[-1][0] >= _RATE_STEP_NS:
                self._arrivals.append((now_ns, self.received))
            self._changed.notify_all()

    def _append(self, arrived: int, line: str) -> None:
        if len(self._lines) == self._lines.maxlen:
            self._first += 1
        self._lines.append((arrived, line))

    def add_lost(self, events: int) -> None:
        """Count events the kernel could not deliver (its buffer was full)."""
        with self._changed:
            self._lost += events

    def close(self) -> None:
        """No more text will come: an unfinished last line counts as a line."""
        with self._changed:
            if self._partial is not None:
                self._append(*self._partial)
                self._partial = None
            self._open = False
            self._changed.notify_all()

    # -- readers ----------------------------------------------------------------

    def lines(self, start: int = 0) -> tuple[list[tuple[int, str]], int, int]:
        """Lines from index ``start`` on (indices count every line ever received).

        Returns ``(lines, first, end)``: (arrival time in ns since the epoch,
        text) pairs; the index of ``lines[0]`` (above ``start`` when older
        lines were dropped); and the index after the last one.
        """
        with self._changed:
            first = max(start, self._first)
            held = itertools.islice(self._lines, first - self._first, None)
            return list(held), first, self._first + len(self._lines)

    @property
    def received(self) -> int:
        """Lines received in all."""
        return self._first + len(self._lines)

    @property
    def dropped(self) -> int:
        """The oldest lines, dropped to keep ``max_lines``."""
        return self._first

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver."""
        return self._lost

    @property
    def running(self) -> bool:
        """Whether more text may come."""
        return self._open

    def rate(self) -> float:
        """Lines per second over the last few seconds."""
        with self._changed:
            now = time.time_ns()
            base_t, base_n = self._arrivals[0]
            for t, n in self._arrivals:
                if t >= now - RATE_WINDOW * 1e9:
                    break
                base_t, base_n = t, n
            span = (now - base_t) / 1e9
            return (self.received - base_n) / span if span > 0 else 0.0

    def wait(self, count: int, timeout: float) -> None:
        """Block until ``count`` lines were received in all, no more can come, or ``timeout`` seconds passed."""
        with self._changed:
            self._changed.wait_for(lambda: self.received >= count or not self._open, timeout)
