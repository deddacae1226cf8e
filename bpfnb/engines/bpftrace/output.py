"""bpftrace's JSON output, line by line, folded into state that any thread may read.

``bpftrace -f json`` writes one JSON object a line. bpftrace 0.17 writes::

    {"type": "attached_probes", "data": {"probes": 3}}      before it attaches
    {"type": "printf", "data": "exec pid=12 comm=sh\\n"}     one per printf() call
    {"type": "lost_events", "data": {"events": 8716}}       the perf buffer overflowed
    {"type": "map", "data": {"@c": {"sh": 1}}}              count/sum/min/max/plain values
    {"type": "stats", "data": {"@a": {"sh": 4}}}            avg() (a number) and
    {"type": "stats", "data": {"@s": {"count": 1, "average": 5, "total": 5}}}  stats()
    {"type": "hist", "data": {"@h": [{"min": 2, "max": 3, "count": 5}]}}       hist/lhist
    {"type": "time", "data": "04:28:47\\n"}    also "join", "cat", "syscall" (system())
    {"type": "value", "data": [1, "a"]}       print() of a value that is not a map

and, at exit, two empty lines before it prints every map that is not empty.
Printed text goes to a :class:`~.lines.LineLog`; maps keep their latest
snapshot.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from .lines import LineLog

__all__ = ["MapSnapshot", "OutputState"]

_MAP_TYPES = frozenset({"map", "hist", "stats"})
# Records of output the script asked for (printf, time(), join(), cat(),
# system(), print() of a value that is not a map): the text stream's.
_TEXT_TYPES = frozenset({"printf", "time", "join", "cat", "syscall", "value"})


@dataclass(frozen=True)
class MapSnapshot:
    """The latest printed state of one map.

    Attributes
    ----------
    kind
        The record's type: ``map``, ``hist`` or ``stats``.
    data
        The map's JSON value: a number or a string (no key), ``{key: value}``,
        a list of buckets (hist), or None when the map is empty.
    time
        When it arrived, in seconds since the epoch.
    final
        Whether these are the values bpftrace printed at exit.
    """

    kind: str
    data: Any
    time: float
    final: bool = False


class OutputState:
    """Everything bpftrace has said on stdout so far.

    Parameters
    ----------
    marker
        The printf line (without newline) that ends a round of prints.
    printed
        The maps each round prints: one missing from a round is empty.
    max_lines
        Printed lines kept (see :class:`~.lines.LineLog`).
    """

    def __init__(self, marker: str, printed: tuple[str, ...], *, max_lines: int = 1_000_000) -> None:
        self._marker = marker + "\n"
        self._printed = printed
        self._changed = threading.Condition()
        self._maps: dict[str, MapSnapshot] = {}
        self._in_round: set[str] = set()
        self._in_exit_dump: set[str] | None = None  # maps printed since the exit dump began
        self.text = LineLog(max_lines)
        #: The probes bpftrace said it attaches (before it does), None before it says.
        self.attached: int | None = None
        self.finished = False

    # -- the reader thread -----------------------------------------------------

    def feed(self, line: str, now_ns: int | None = None) -> None:
        """Take one line of bpftrace's stdout."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        if not line.strip():
            with self._changed:  # the empty lines before the exit dump
                if self._in_exit_dump is None:
                    self._in_exit_dump = set()
            return
        try:
            record = json.loads(line)
            kind, data = record["type"], record["data"]
        except (ValueError, KeyError, TypeError):
            return  # not a record of bpftrace's (nothing else writes there)
        if kind in _TEXT_TYPES:
            if not isinstance(data, str):
                data = json.dumps(data) + "\n"  # print((1, "a")) gives [1, "a"]
            elif kind == "value":
                data += "\n"  # print("s") gives "s", without the newline a printf has
            if data == self._marker:
                self._end_round(now_ns)
            else:
                self.text.add(data, now_ns)
        elif kind == "lost_events":
            self.text.add_lost(int(data["events"]))
        elif kind in _MAP_TYPES and isinstance(data, dict):
            self._snapshots(kind, data, now_ns)
        elif kind == "attached_probes":
            with self._changed:
                self.attached = int(data["probes"])
                self._changed.notify_all()

    def _snapshots(self, kind: str, data: dict[str, Any], now_ns: int) -> None:
        with self._changed:
            final = self._in_exit_dump is not None
            for name, value in data.items():
                self._maps[name] = MapSnapshot(kind, value, now_ns / 1e9, final)
                self._in_round.add(name)
                if self._in_exit_dump is not None:
                    self._in_exit_dump.add(name)

    def _end_round(self, now_ns: int) -> None:
        with self._changed:
            for name in self._printed:
                if name not in self._in_round:
                    kind = self._maps[name].kind if name in self._maps else "map"
                    self._maps[name] = MapSnapshot(kind, None, now_ns / 1e9)
            self._in_round = set()
            self._changed.notify_all()

    def finish(self, clean_exit: bool) -> None:
        """bpftrace's stdout ended.

        After a clean exit, a map missing from the exit dump is empty; a
        killed bpftrace dumped nothing, so its last snapshots stand.
        """
        with self._changed:
            if clean_exit and self._in_exit_dump is not None:
                now = time.time()
                for name, snapshot in list(self._maps.items()):
                    if name not in self._in_exit_dump:
                        self._maps[name] = MapSnapshot(snapshot.kind, None, now, True)
            self.finished = True
            self._changed.notify_all()
        self.text.close()

    # -- readers -----------------------------------------------------------------

    def map(self, name: str) -> MapSnapshot | None:
        """The latest snapshot of ``name``, None if it was never printed."""
        with self._changed:
            return self._maps.get(name)

    def wait_newer(self, name: str, than: float, timeout: float) -> bool:
        """Block until ``name`` has a snapshot newer than ``than`` (seconds since the epoch); whether it has.

        Every round of prints renews every printed map (an empty one too), so
        this waits for the next round; it gives up when bpftrace's output ends.
        """

        def newer() -> bool:
            snapshot = self._maps.get(name)
            return snapshot is not None and snapshot.time > than

        with self._changed:
            return self._changed.wait_for(lambda: newer() or self.finished, timeout) and newer()

    def wait_change(self, timeout: float) -> None:
        """Block until something is noted (a record, the end of output) or ``timeout`` seconds passed."""
        with self._changed:
            self._changed.wait(timeout)
