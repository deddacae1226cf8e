"""``%bpf ls``: a session's programs, and the streams, histories and live plots each one runs.

One row per program (its hooks and maps, the entries its maps hold, how often
it runs and what that costs the kernel) and one row per resource under it
(state, rows, rate, lost events, what it costs this process). A program's run
rate and cost are measured over a short window, and only while the kernel
counts run time (``%bpf stats on``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..display import html as _html
from ..engines.base import Resource
from ..kernel.stats import stats_enabled
from ..maps.view import Counted, entries_shown

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Hooked", "ListingRow", "Listed", "SessionListing"]

#: Seconds over which ``%bpf ls`` counts the programs' runs.
RATE_WINDOW = 0.3


class ListingRow(NamedTuple):
    """One line of ``%bpf ls``; numbers are None where they do not apply."""

    name: str
    kind: str
    state: str
    rows: int | None
    rate: float | None
    lost: int | None
    cost: str
    details: str


class Hooked(Protocol):
    """A hook as the listing names it (a :class:`bpfnb.Probe`, or one a capture recorded)."""

    @property
    def kind(self) -> str: ...

    @property
    def target(self) -> str: ...


class Listed(Protocol):
    """A program as ``%bpf ls`` reads it: a :class:`bpfnb.Program`, one on a cluster's hosts, or one a capture recorded."""

    @property
    def engine(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def attachments(self) -> Sequence[Hooked]: ...

    @property
    def maps(self) -> Mapping[str, Counted]: ...

    @property
    def resources(self) -> list[Resource]: ...

    def map_names(self) -> list[str]: ...

    def stats(self) -> pd.DataFrame: ...


class _Runs(NamedTuple):
    runs: int
    nanoseconds: int


def _runs(program: Listed) -> _Runs:
    stats = program.stats()
    return _Runs(int(stats["run_count"].sum()), int(stats["run_time_ns"].sum()))


def _run_rates(programs: Sequence[Listed], window: float) -> dict[int, tuple[float, str]]:
    """``{id(program): (runs per second, cost)}`` over ``window`` seconds; empty while stats are off."""
    if not programs or not stats_enabled():
        return {}
    before = [_runs(p) for p in programs]
    started = time.monotonic()
    time.sleep(window)
    after = [_runs(p) for p in programs]
    elapsed = time.monotonic() - started
    rates = {}
    for program, first, last in zip(programs, before, after):
        runs, spent = last.runs - first.runs, last.nanoseconds - first.nanoseconds
        cost = f"{spent / 1e9 / elapsed:.2%} of a core, {spent / runs:,.0f} ns a run" if runs > 0 else "idle"
        rates[id(program)] = (runs / elapsed, cost)
    return rates


def _entries(program: Listed) -> int | None:
    counts = [n for n in (entries_shown(view) for view in program.maps.values()) if isinstance(n, int)]
    return sum(counts) if counts else None


def _program_row(name: str, program: Listed, rate: tuple[float, str] | None) -> ListingRow:
    hooks = "; ".join(f"{p.kind} {p.target}" for p in program.attachments) or "no hooks"
    maps = ", ".join(program.map_names())
    details = f"{hooks}; maps {maps}" if maps else hooks
    runs, cost = rate if rate is not None else (None, "")
    return ListingRow(name, f"program ({program.engine})", program.state, _entries(program), runs, None, cost, details)


def _rows(programs: Sequence[tuple[str, Listed]], window: float) -> list[ListingRow]:
    rates = _run_rates([program for _, program in programs], window)
    rows = []
    for name, program in programs:
        rows.append(_program_row(name, program, rates.get(id(program))))
        for resource in program.resources:
            s = resource.summary()
            rows.append(ListingRow(f'{name}["{s.name}"]', s.kind, s.state, s.rows, s.rate, s.lost, s.cost, ""))
    return rows


def _number(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:,.0f}/s"


class SessionListing:
    """The rows of ``%bpf ls``: a table in a notebook, aligned text elsewhere.

    Parameters
    ----------
    programs
        ``(name, program)`` of the session's programs that are not detached.
    window
        Seconds over which the programs' runs are counted (while stats are on).
    """

    HEADERS = ("name", "kind", "state", "rows", "rate", "lost", "cost", "details")

    def __init__(self, programs: Sequence[tuple[str, Listed]], *, window: float = RATE_WINDOW) -> None:
        self.rows = _rows(programs, window)
        self.stats_on = stats_enabled()

    def __len__(self) -> int:
        return len(self.rows)

    def _cells(self) -> list[tuple[str, ...]]:
        return [
            (r.name, r.kind, r.state, _number(r.rows), _rate(r.rate), _number(r.lost), r.cost, r.details)
            for r in self.rows
        ]

    def _remark(self) -> str:
        if self.stats_on or not self.rows:
            return ""
        return "Programs' rates and costs need run-time stats: `%bpf stats on`."

    def __repr__(self) -> str:
        if not self.rows:
            return "no bpfnb programs in this session"
        remark = self._remark()
        return _html.text_table(self.HEADERS, self._cells()) + (f"\n{remark}" if remark else "")

    def _repr_html_(self) -> str:
        if not self.rows:
            return _html.card("bpfnb session", _html.note("No programs: run a %%bpf or %%bpftrace cell."))
        table = _html.table(self.HEADERS, self._cells(), numeric=("rows", "rate", "lost"), nowrap=("name", "state"))
        remark = self._remark()
        programs = sum(r.kind.startswith("program") for r in self.rows)
        title = f"bpfnb session: {programs} program{'s' * (programs != 1)}"
        if len(self.rows) > programs:
            title += f", running {len(self.rows) - programs} streams, histories and live plots"
        return _html.card(title, table, _html.note(_html.code(remark)) if remark else "")
