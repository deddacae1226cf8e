"""``ClusterProgram``: one cell loaded on many hosts, each host all-or-nothing.

Every host builds the cell into its own :class:`bpfnb.Program` (on its first
engine, see :mod:`bpfnb.remote.agent`). Hosts where it failed are listed
with their errors and the others keep running, unless ``strict``: then any
failure detaches it everywhere. A host has a state:

``running``   loaded and answering;
``lost``      its engine died or went silent; what was gathered from it is kept;
``back``      reachable again (a new engine on the same machine): ``reload()`` loads it there;
``failed``    the cell did not load there (see ``failures``);
``detached``  released.

A host that only went silent and answers again, still holding the program,
is ``running`` again by itself, and its streams resume where they stopped.
"""

from __future__ import annotations

import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..display import html as _html
from ..engines.base import Resource
from ..engines.hooks import Probe
from ..errors import ArgumentError, BpfnbError, ClusterError, NoSuchMapError
from ..streams.stream import only_buffer
from . import agent
from .connection import Cluster, Unreachable, raise_remote

if TYPE_CHECKING:
    import pandas as pd

    from .maps import ClusterMap
    from .streams import ClusterStream

__all__ = ["HOST_STATES", "ClusterProgram", "HostState", "HostTable"]

HOST_STATES = ("running", "lost", "back", "failed", "detached")
_LOAD_OPTIONS = ("name", "engine", "cflags", "debug", "attach", "probes", "first_line", "trust_headers", "interval_ms", "env")


@dataclass
class HostState:
    """How the program fares on one host."""

    host: str
    engine: int
    kernel: str
    state: str = "running"
    #: Why it failed or was lost.
    reason: str = ""
    #: The engine's error record, for a failed load.
    error: dict[str, Any] | None = None
    since: float = field(default_factory=time.time)


class ClusterProgram:
    """A cell loaded on the hosts of a :class:`~bpfnb.remote.connection.Cluster`.

    Made by ``%%bpf NAME --on all``, ``bpfnb.Program(source, on="all")`` or
    ``cluster.program(source, on=...)``. The options are :class:`bpfnb.Program`'s.

    Examples
    --------
    >>> lat = bpfnb.Program(source, on="all")
    >>> lat["dist"].df(merge="sum")       # one histogram, added up across hosts
    >>> lat.stream("events").df()         # every host's events, with a host column
    >>> lat.hosts                         # state, rows, losses and probe cost per host
    >>> lat.detach()
    """

    def __init__(
        self, cluster: Cluster, source: str, *, on: str | Sequence[str] = "all", strict: bool = False, **options: Any
    ) -> None:
        unknown = set(options) - set(_LOAD_OPTIONS)
        if unknown:
            raise ArgumentError(f"unknown option {', '.join(sorted(unknown))} for a program", hint=f"options are: {', '.join(_LOAD_OPTIONS)}")
        if not isinstance(source, str) or not source.strip():
            raise ArgumentError("the cell has no C code to compile", hint="write a program below the %%bpf line")
        self._cluster = cluster
        self.source = source
        self.name = str(options.get("name") or "program")
        self.options = {**options, "name": self.name}
        #: The engines' key for this program: a re-run cell is a new key, so the old one can go on its own.
        self.key = f"{self.name}-{uuid.uuid4().hex[:12]}"
        self._lock = threading.RLock()
        self._states: dict[str, HostState] = {}
        self._descriptions: dict[str, dict[str, Any]] = {}
        self._resources: list[Resource] = []
        self._watchers: list[Callable[[Resource], None]] = []
        self._maps: dict[str, ClusterMap] = {}
        self._closed = False
        #: True from the start of detach on: its resources stop (a recording takes its last snapshots) while maps still read.
        self._releasing = False
        self._finalizer = weakref.finalize(self, _release, cluster, self.key, self._states)
        self._load(cluster.select(on))
        if strict and self.failures:
            failures = self._failure_table()
            self.detach()
            raise ClusterError(
                f"{self.name!r} failed on {len(self.failures)} of {len(self._states)} hosts; with strict it runs nowhere",
                details=failures,
                hint="fix the cell for those hosts, or load without strict to keep it where it works",
            )
        if not self.running_hosts:
            failures = self._failure_table()
            self.detach()
            raise ClusterError(f"{self.name!r} loaded on no host", details=failures, hint=self._first_hint())

    def _load(self, names: list[str]) -> None:
        hosts = [self.cluster.hosts[n] for n in names]
        answers = self.cluster.gather(
            [(h.engine, agent.load, (self.key, self.source, self.options), {}) for h in hosts], self.cluster.timeout
        )
        with self._lock:
            for host, answer in zip(hosts, answers):
                state = HostState(host.name, host.engine, host.kernel)
                if isinstance(answer, Unreachable):
                    state.state, state.reason = "failed", f"unreachable: {answer}"
                elif "error" in answer:
                    state.state, state.error = "failed", answer["error"]
                    state.reason = f"{answer['error']['type']}: {answer['error']['message']}"
                else:
                    self._descriptions[host.name] = answer["ok"]
                self._states[host.name] = state

    # -- hosts ----------------------------------------------------------------------

    @property
    def cluster(self) -> Cluster:
        """The cluster the program is loaded on."""
        return self._cluster

    @property
    def running_hosts(self) -> list[str]:
        """Hosts where the program runs and answers now."""
        return [h for h, s in self._states.items() if s.state == "running"]

    @property
    def failures(self) -> dict[str, str]:
        """Hosts where the cell did not load, with why."""
        return {h: s.reason for h, s in self._states.items() if s.state == "failed"}

    @property
    def host_names(self) -> list[str]:
        """Every host the program was asked to load on."""
        return list(self._states)

    def state_of(self, host: str) -> HostState:
        return self._states[host]

    def mark_lost(self, host: str, reason: str) -> None:
        """Note that ``host`` stopped answering (streams and map reads call this)."""
        with self._lock:
            state = self._states[host]
            if state.state == "running":
                state.state, state.reason, state.since = "lost", reason, time.time()

    def mark_answering(self, host: str) -> None:
        """Note that a lost ``host`` answered again, still holding the program."""
        with self._lock:
            state = self._states[host]
            if state.state == "lost":
                lost_for = time.time() - state.since
                state.state, state.reason, state.since = "running", f"answered again after {lost_for:.1f} s", time.time()

    @property
    def hosts(self) -> HostTable:
        """Per host: state, engine, kernel, rows gathered, events lost, probe cost; checked afresh."""
        self.check()
        return HostTable(self)

    def check(self) -> None:
        """Ask every host how the program fares; mark the silent ones lost and the returned ones back."""
        if self._closed:
            return
        self.cluster.refresh()
        with self._lock:
            asked = [h for h, s in self._states.items() if s.state in ("running", "lost")]
        answers = self.cluster.gather(
            [(self._states[h].engine, agent.status, (self.key,), {}) for h in asked], self.cluster.lost_after
        )
        self._status: dict[str, dict[str, Any]] = {}
        for host, answer in zip(asked, answers):
            if isinstance(answer, Unreachable):
                self.mark_lost(host, str(answer))
            elif "error" in answer or not answer["ok"]["held"]:
                self.mark_lost(host, "the engine does not hold the program any more")
            else:
                self.mark_answering(host)
                self._status[host] = answer["ok"]
        with self._lock:
            for host, state in self._states.items():
                found = self.cluster.hosts.get(host)
                if state.state == "lost" and found is not None and found.engine != state.engine:
                    state.state, state.since = "back", time.time()
                    state.reason = f"engine {found.engine} answers on {host}: reload() loads the program there again"

    def reload(self, hosts: str | Sequence[str] | None = None) -> list[str]:
        """Load the program again where it is ``back`` (or on the ``hosts`` named); return those hosts."""
        self.require_alive("reload")
        self.check()
        if hosts is None:
            names = [h for h, s in self._states.items() if s.state == "back"]
        else:
            names = self.cluster.select(hosts)
        if not names:
            return []
        for name in names:
            old = self._states.get(name)
            if old is not None and old.state in ("running", "lost"):
                self.cluster.gather([(old.engine, agent.detach, (self.key,), {})], self.cluster.lost_after)
        self._load(names)
        for resource in self.resources:
            rejoin = getattr(resource, "rejoin", None)
            if rejoin is not None:
                rejoin([n for n in names if self._states[n].state == "running"])
        return [n for n in names if self._states[n].state == "running"]

    # -- what the program holds ---------------------------------------------------------

    @property
    def description(self) -> dict[str, Any]:
        """What the first host that loaded it says about the program (every host builds the same cell)."""
        if not self._descriptions:
            raise ClusterError(f"{self.name!r} is loaded on no host")
        return next(iter(self._descriptions.values()))

    @property
    def engine(self) -> str:
        return str(self.description["engine"])

    @property
    def functions(self) -> list[str]:
        return list(self.description["functions"])

    @property
    def attachments(self) -> list[Probe]:
        return [] if self.closed else list(self.description["attachments"])

    @property
    def warnings(self) -> str:
        return str(self.description["warnings"])

    @property
    def log(self) -> str:
        """What the compiler and loader printed on each host, under the host's name."""
        return "\n".join(f"== {host} ==\n{d['log']}" for host, d in self._descriptions.items() if d["log"])

    def map_names(self) -> list[str]:
        return list(self.description["maps"]) if self._descriptions else []

    @property
    def maps(self) -> Mapping[str, ClusterMap]:
        return {name: self[name] for name in self.map_names()}

    def __getitem__(self, name: str) -> ClusterMap:
        from .maps import ClusterMap

        self.require_alive("read a map of")
        if name not in self._maps:
            spec = self.description["maps"].get(name)
            if spec is None:
                raise NoSuchMapError(f"program {self.name!r} has no map {name!r} (its maps: {', '.join(self.map_names()) or 'none'})")
            self._maps[name] = ClusterMap(self, name, spec)
        return self._maps[name]

    def stream(self, name: str | None = None, **options: Any) -> ClusterStream:
        """Consume ring or perf buffer ``name`` on every running host; see :class:`~bpfnb.remote.streams.ClusterStream`.

        Without a name: the program's only ring or perf buffer.
        """
        from .streams import ClusterStream

        self.require_alive("stream a buffer of")
        if name is None:
            name = self._only_buffer()
        spec = self.description["maps"].get(name)
        if spec is None:
            raise NoSuchMapError(f"program {self.name!r} has no map {name!r} (its maps: {', '.join(self.map_names()) or 'none'})")
        return ClusterStream(self, name, options)

    @property
    def prints(self) -> bool:
        """False: what a bpftrace program prints stays on its hosts (``stream()`` says so)."""
        return False

    def _only_buffer(self) -> str:
        if self.engine == "bpftrace":
            raise ArgumentError(
                "what a bpftrace program prints (printf) stays on its hosts: it is not gathered across a cluster",
                hint="count or collect in maps and read them with prog['@map'].df(), or run the script without --on",
            )
        return only_buffer(self.name, {name: spec["map_type"] for name, spec in self.description["maps"].items()})

    def call_hosts(self, fn: Any, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``fn(key, *args, **kwargs)`` on every running host at once: the answers of those that answered.

        Silent hosts are marked lost; an error a host answered with is raised.
        """
        hosts = self.running_hosts
        answers = self.cluster.gather(
            [(self._states[h].engine, fn, (self.key, *args), kwargs) for h in hosts],
            self.cluster.timeout if timeout is None else timeout,
        )
        found = {}
        for host, answer in zip(hosts, answers):
            if isinstance(answer, Unreachable):
                self.mark_lost(host, str(answer))
            elif "error" in answer:
                raise_remote(host, answer["error"])
            else:
                found[host] = answer["ok"]
        return found

    # -- lifecycle (an Owner of streams and live plots) ---------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def own(self, resource: Resource) -> None:
        """Stop ``resource`` when the program detaches (at once if it is detaching or has)."""
        if self._releasing:
            resource.stop()
            return
        with self._lock:
            self._resources[:] = [r for r in self._resources if r.running]
            self._resources.append(resource)
        for watcher in list(self._watchers):
            watcher(resource)

    def watch(self, watcher: Callable[[Resource], None]) -> None:
        """Call ``watcher(resource)`` for every resource the program takes from now on (a recording follows streams so)."""
        self._watchers.append(watcher)

    def unwatch(self, watcher: Callable[[Resource], None]) -> None:
        """Stop calling ``watcher``; nothing happens if it was not watching."""
        if watcher in self._watchers:
            self._watchers.remove(watcher)

    @property
    def resources(self) -> list[Resource]:
        return [r for r in self._resources if r.running]

    def detach(self) -> None:
        """Stop its streams and plots and detach it on every host that answers; idempotent."""
        if self._releasing:
            return
        self._releasing = True
        for resource in reversed(self._resources):
            resource.stop()
        self._closed = True
        self._finalizer()
        with self._lock:
            for state in self._states.values():
                state.state = "detached" if state.state != "failed" else state.state

    close = detach

    def __enter__(self) -> ClusterProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def require_alive(self, doing: str) -> None:
        if self._closed:
            raise BpfnbError(f"cannot {doing} {self.name!r}: the program is detached", hint="run its cell again")

    @property
    def state(self) -> str:
        """``running on N of M hosts``, or ``detached``."""
        if self._closed:
            return "detached"
        return f"running on {len(self.running_hosts)} of {len(self._states)} hosts"

    def stats(self) -> pd.DataFrame:
        """Per host: runs and run time of the program's functions (counted while the kernel's stats are on)."""
        import pandas as pd

        rows = [
            {"host": h, "run_count": s["run_count"], "run_time_ns": s["run_time_ns"], "stats_enabled": s["stats_enabled"]}
            for h, s in self.call_hosts(agent.status, timeout=self.cluster.lost_after).items()
            if s.get("held")
        ]
        frame = pd.DataFrame(rows, columns=["host", "run_count", "run_time_ns", "stats_enabled"])
        frame.attrs["stats_enabled"] = bool(frame["stats_enabled"].all())
        return frame

    # -- display -------------------------------------------------------------------------

    def _failure_table(self) -> str:
        rows = [(h, s.reason) for h, s in self._states.items() if s.state == "failed"]
        return _html.text_table(("host", "error"), rows)

    def _first_hint(self) -> str:
        for state in self._states.values():
            if state.error and state.error.get("hint"):
                return str(state.error["hint"])
        return ""

    def __repr__(self) -> str:
        lines = [f"<bpfnb.ClusterProgram {self.name!r}: {self.state}>"]
        if not self._closed and self._descriptions:
            lines += [f"  {probe}" for probe in self.attachments]
            lines += [f"  map {name}" for name in self.map_names()]
            lines += ["  " + line for line in repr(HostTable(self)).splitlines()]
        if self.failures:
            lines += ["  failed on:", *("    " + line for line in self._failure_table().splitlines())]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if self._closed:
            return _html.card(f"Program {self.name}: detached")
        parts = [HostTable(self).html()]
        if self.attachments:
            parts.append(_html.table(["hook", "target", "function"], ((p.kind, p.target, p.function) for p in self.attachments)))
        if self.failures:
            parts.append(_html.note(f"Failed on {len(self.failures)} hosts; the others run:", kind="bad"))
            parts.append(self._failure_details_html())
        return _html.card(f"Program {self.name} on a cluster: {self.state}", *parts)

    def _failure_details_html(self) -> str:
        rows = []
        for host, state in self._states.items():
            if state.state != "failed":
                continue
            error = state.error or {}
            detail = "\n".join(x for x in (error.get("details", ""), error.get("hint", "")) if x)
            rows.append((host, state.reason, _html.Markup(f"<pre>{_html.code(detail)}</pre>") if detail else "-"))
        return _html.table(["host", "error", "details"], rows)

    def __iter__(self) -> Iterator[str]:
        return iter(self.map_names())


class HostTable:
    """``prog.hosts``: one row per host, as a table (``df()`` for a DataFrame)."""

    HEADERS = ("host", "state", "engine", "kernel", "rows", "lost", "probe cost", "clock skew", "note")

    def __init__(self, program: ClusterProgram) -> None:
        status = getattr(program, "_status", {})
        self.rows: list[tuple[object, ...]] = []
        for host, state in program._states.items():
            rows = lost = 0
            for resource in program.resources:
                counts = getattr(resource, "host_counts", None)
                if counts is not None and host in counts():
                    got = counts()[host]
                    rows, lost = rows + got["rows"], lost + got["lost"] + got["dropped"]
            found = program.cluster.hosts.get(host)
            self.rows.append(
                (
                    host,
                    state.state,
                    state.engine,
                    state.kernel,
                    rows,
                    lost,
                    _cost(status.get(host)),
                    found.skew_text() if found is not None else "-",
                    state.reason,
                )
            )

    def df(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(self.HEADERS))

    def __getitem__(self, host: str) -> dict[str, object]:
        for row in self.rows:
            if row[0] == host:
                return dict(zip(self.HEADERS, row))
        raise KeyError(host)

    def __repr__(self) -> str:
        return _html.text_table(self.HEADERS, self.rows)

    def html(self) -> str:
        return _html.table(self.HEADERS, self.rows)

    def _repr_html_(self) -> str:
        return _html.card("hosts", self.html())


def _cost(status: Mapping[str, Any] | None) -> str:
    if not status:
        return "-"
    if not status["stats_enabled"]:
        return "stats off"
    runs = status["run_count"]
    return f"{status['run_time_ns'] / runs:.0f} ns/run, {runs:,} runs" if runs else "0 runs"


def _release(cluster: Cluster, key: str, states: dict[str, HostState]) -> None:
    """Detach ``key`` on every host that may hold it; silent hosts are skipped (their engine releases it on exit)."""
    engines = [s.engine for s in states.values() if s.state in ("running", "lost", "back")]
    try:
        cluster.gather([(e, agent.detach, (key,), {}) for e in engines], cluster.lost_after)
    except Exception:  # a closed client at exit: the engines release what they hold when they stop
        pass
