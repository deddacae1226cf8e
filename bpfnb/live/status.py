"""The status line under a live plot: its state, frames, counters and what its program costs."""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from typing import Any

from ..engines.base import Owner
from ..plot.units import COUNT, NANOSECONDS

__all__ = ["ProgramCost", "status_html"]


class ProgramCost:
    """The program's own CPU share and run time, from the kernel's run-time stats."""

    def __init__(self, program: Owner | None) -> None:
        self.program = program
        self._last: tuple[float, int, int] | None = None

    def text(self) -> str:
        """``probe 0.12% CPU, 85 ns/run`` since the last call; empty when there is nothing to say."""
        if self.program is None or self.program.closed:
            return ""
        frame = self.program.stats()
        if not frame.attrs.get("stats_enabled", True):
            return "probe cost: stats off"
        now = (time.monotonic(), int(frame["run_time_ns"].sum()), int(frame["run_count"].sum()))
        last, self._last = self._last, now
        if last is None or now[2] <= last[2]:
            return ""
        share = (now[1] - last[1]) / 1e9 / (now[0] - last[0])
        per_run = (now[1] - last[1]) / (now[2] - last[2])
        return f"probe {share:.2%} CPU, {NANOSECONDS.text(per_run)}/run"


def status_html(
    *,
    state: str,
    frames: int,
    draw_seconds: float | None,
    counters: Mapping[str, Any],
    cost: str,
    error: str,
    summary: str = "",
) -> str:
    """One monospace line: ``● live, every 1 s · frame 12 (40 ms) · p50 381 ns · rows 1,000 · 5,012 ev/s · ...``."""
    parts = [state, f"frame {frames}"]
    if draw_seconds is not None:
        parts[-1] += f" ({draw_seconds * 1e3:.0f} ms)"
    if summary:
        parts.append(html.escape(summary))
    parts += [_counter(name, counters[name]) for name in ("rows", "rate", "lost", "dropped") if name in counters]
    if cost:
        parts.append(cost)
    text = " · ".join(parts)
    if error:
        text += f' · <span style="color:#b00">{html.escape(error)}</span>'
    return f'<span style="font-family:monospace;font-size:90%">{text}</span>'


def _counter(name: str, value: Any) -> str:
    if name == "rate":
        return f"{COUNT.text(float(value))} ev/s"
    return f"{name} {COUNT.text(value)}"
