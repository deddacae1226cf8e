"""One map across hosts: each host's frame in one DataFrame with a ``host`` column, or added up.

What crosses the network is what ``df()`` asks for: each engine reads its
map, applies ``query=`` and ``top=`` there, and sends the result as Arrow
IPC. ``merge="sum"`` adds the value columns of rows with equal keys across
hosts (a histogram's counts bucket by bucket); with ``top=`` as well, the
engines send every row that passed ``query=`` and the top rows are taken
after the sum, so that they are exact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ..decode.keyed import summed
from ..display import html as _html
from ..errors import ArgumentError
from . import agent
from .hosted import HostedProgram
from .wire import decode_table, table_facts

if TYPE_CHECKING:
    from ..live.widget import Live
    from ..maps.history import MapHistory

__all__ = ["MERGES", "ClusterMap", "host_frame"]

#: What ``df(merge=...)`` accepts.
MERGES = (None, "sum")


def host_frame(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The hosts' frames as one, ``host`` first (a categorical column: one string per host, not per row)."""
    if not frames:
        return pd.DataFrame({"host": pd.Categorical([])})
    parts = list(frames.values())
    joined = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    codes = np.repeat(np.arange(len(parts), dtype=np.int32), [len(p) for p in parts])
    joined.insert(0, "host", pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(list(frames)))), allow_duplicates=True)
    return joined


class ClusterMap:
    """A map of a :class:`~bpfnb.remote.program.ClusterProgram`, read on every running host."""

    #: Counting asks every host: displays (``%bpf ls``) leave it to ``len()``.
    countable_in_displays = False

    def __init__(self, program: HostedProgram, name: str, spec: Mapping[str, Any]) -> None:
        self.program = program
        self.name = name
        self.map_type: str = spec["map_type"]
        self.key_type: str = spec["key_type"]
        self.value_type: str = spec["value_type"]
        self.histogram: bool = spec["histogram"]
        self.value_columns = frozenset(spec["value_columns"])
        #: Whether a recording may snapshot it: reading does not change it (queues and stacks it would empty).
        self.recordable: bool = spec["recordable"]

    def df(
        self,
        *,
        merge: str | None = None,
        query: str | None = None,
        top: int | None = None,
        by: str | None = None,
        **df_options: Any,
    ) -> pd.DataFrame:
        """Every running host's snapshot of the map, as one frame.

        Parameters
        ----------
        merge
            None: one row per host and key, with a ``host`` column. ``"sum"``:
            one row per key, value columns added across hosts.
        query
            A ``DataFrame.query`` expression applied on each host first.
        top, by
            Keep the ``top`` rows with the largest ``by`` (default: the map's
            one value column), per host, or after the sum with ``merge="sum"``.
        **df_options
            What the map's own ``df()`` takes: ``decode=``, ``percpu=``, ``buckets=``...

        The frame's ``attrs["missing"]`` lists hosts that did not answer
        (marked lost in ``prog.hosts``) or where the program is not running.
        """
        if merge not in MERGES:
            raise ArgumentError(f"merge must be one of {MERGES}, not {merge!r}")
        if top is not None and (not isinstance(top, int) or top < 1):
            raise ArgumentError(f"top must be a positive int, not {top!r}")
        program = self.program
        program.require_alive("read a map of")
        answers = program.call_hosts(
            agent.map_frame,
            self.name,
            df_options=df_options,
            query=query,
            top=None if merge else top,
            by=by,
            compression=program.cluster.compression,
        )
        tables = {host: decode_table(data) for host, data in answers.items()}
        missing = [h for h in program.host_names if h not in tables]
        if merge == "sum":
            frame = _summed(tables)
            if top is not None:
                frame = frame.nlargest(top, by or _single_value(tables), keep="first").reset_index(drop=True)
        else:
            frame = host_frame({host: table.to_pandas() for host, table in tables.items()})
        frame.attrs["missing"] = missing
        return frame

    def __len__(self) -> int:
        """The entries the map holds on every running host together."""
        self.program.require_alive("count the entries of a map of")
        return sum(self.program.call_hosts(agent.map_len, self.name).values())

    def history(self, interval: float = 1.0, *, max_rows: int = 100_000, **df_options: Any) -> MapHistory:
        """Snapshots of ``df(**df_options)`` every ``interval`` seconds; see :class:`bpfnb.MapHistory`."""
        from ..maps.history import MapHistory

        return MapHistory(self, interval=interval, max_rows=max_rows, **df_options)

    def live(self, kind: str | None = None, *, merge: str | None = "sum", **options: Any) -> Live:
        """A live plot of the map added up across hosts (``merge=None``: with a ``host`` column)."""
        from ..live import live

        return live(_Merged(self, merge), kind=kind, **options)

    def _title(self) -> str:
        kind = f"{self.map_type} (histogram)" if self.histogram else self.map_type
        return f"map {self.name} on {len(self.program.running_hosts)} hosts: {kind} {self.key_type} -> {self.value_type}"

    def __repr__(self) -> str:
        return f"<bpfnb {self._title()}>"

    def _repr_html_(self) -> str:
        try:
            body = self.df(merge="sum").head(10).to_html(max_cols=12)
        except Exception as exc:  # a display must not raise: show why instead
            body = _html.note(f"{type(exc).__name__}: {exc}", kind="bad")
        return _html.card(f"{self._title()}, added up", body)


class _Merged:
    """A cluster map as live plots see one map: its ``df()`` merged the chosen way."""

    def __init__(self, view: ClusterMap, merge: str | None) -> None:
        self.view = view
        self.merge = merge
        self.name = view.name
        self.program = view.program
        self.histogram = view.histogram
        self.value_columns = view.value_columns

    def df(self, **options: Any) -> pd.DataFrame:
        return self.view.df(merge=self.merge, **options)

    def history(self, interval: float = 1.0, *, max_rows: int = 100_000, **df_options: Any) -> MapHistory:
        from ..maps.history import MapHistory

        return MapHistory(self, interval=interval, max_rows=max_rows, **df_options)


def _facts(tables: Mapping[str, pa.Table]) -> dict[str, Any]:
    for table in tables.values():
        return table_facts(table)
    return {"keys": [], "values": []}


def _single_value(tables: Mapping[str, pa.Table]) -> str:
    values = _facts(tables)["values"]
    if len(values) != 1:
        raise ArgumentError("top= needs a column to rank by: name one with by=...")
    return str(values[0])


def _summed(tables: Mapping[str, pa.Table]) -> pd.DataFrame:
    facts = _facts(tables)
    keys, values = list(facts["keys"]), list(facts["values"])
    frames = [t.to_pandas() for t in tables.values()]
    if not frames:
        return pd.DataFrame(columns=keys + values)
    try:
        return summed(pd.concat(frames, ignore_index=True), keys, values)
    except ValueError as exc:
        raise ArgumentError(
            f"merge='sum' adds numbers; {exc}", hint="read it with merge=None (a host column), or decode it after the merge"
        ) from None
