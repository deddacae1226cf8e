"""A connection to an ipyparallel cluster, seen as hosts (made by ``bpfnb.cluster(profile=...)``).

Engines are grouped into hosts by hostname plus boot id, so two engines on
one machine are one host (programs load on its first engine; the others are
spares). Each host's clock is compared with this process's (a few round
trips, the shortest kept): the skew and its uncertainty are shown and can be
taken out of stream times.

Every call to an engine goes through :meth:`Cluster.submit` and
:meth:`Cluster.gather`: an engine that does not answer in time, or that
died, is reported as unreachable (:class:`Unreachable`), never as a hang.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import errors
from ..display import html as _html
from ..errors import ArgumentError, BpfnbError, ClusterError
from . import agent

if TYPE_CHECKING:
    import ipyparallel as ipp

__all__ = ["Cluster", "Host", "Unreachable", "current_cluster", "outcome", "raise_remote", "set_current"]

#: Round trips per skew estimate; the shortest one is kept.
_CLOCK_SAMPLES = 5


class Unreachable(Exception):
    """An engine did not answer (dead, cut off, or too slow); says why."""


@dataclass(frozen=True)
class Host:
    """One machine: its name, its engines (the first one holds the programs), its kernel and clock."""

    name: str
    hostname: str
    boot_id: str
    kernel: str
    engines: tuple[int, ...]
    root: bool
    #: The host's wall clock minus this process's, in ns, and the bound of that estimate.
    skew_ns: int = 0
    skew_error_ns: int = 0

    @property
    def engine(self) -> int:
        return self.engines[0]

    def skew_text(self) -> str:
        return f"{self.skew_ns / 1e6:+.2f} ms ± {self.skew_error_ns / 1e6:.2f} ms"


class Cluster:
    """An ipyparallel cluster's engines, grouped into hosts; made by :func:`cluster`.

    Parameters
    ----------
    client
        A connected ``ipyparallel.Client``.
    lost_after
        Seconds an engine may stay silent on a stream (or a status check)
        before its host is marked lost.
    timeout
        Seconds a load or a map read may take on one host.
    compression
        Arrow IPC compression of what engines send: None, ``"lz4"`` or ``"zstd"``.
    """

    def __init__(
        self,
        client: ipp.Client,
        *,
        lost_after: float = 5.0,
        timeout: float = 120.0,
        compression: str | None = None,
        launched: Any = None,
    ) -> None:
        from .wire import COMPRESSIONS

        if compression not in COMPRESSIONS:
            raise ArgumentError(f"compression must be one of {COMPRESSIONS}, not {compression!r}")
        if lost_after <= 0 or timeout <= 0:
            raise ArgumentError(f"lost_after and timeout must be positive seconds, not {lost_after!r}, {timeout!r}")
        self.client = client
        self.lost_after = lost_after
        self.timeout = timeout
        self.compression = compression
        #: The ipyparallel Cluster this session started (``%bpf cluster start``), stopped by :meth:`stop`.
        self.launched = launched
        self.hosts: dict[str, Host] = {}
        self._known: dict[int, dict[str, Any]] = {}  # engine id -> what it said about itself
        self._lock = threading.Lock()
        self.refresh()

    # -- engines and hosts --------------------------------------------------------

    def refresh(self) -> dict[str, Host]:
        """Look at the engines registered now: new ones are identified, gone ones dropped."""
        with self._lock:
            ids = set(self.client.ids)
            for gone in set(self._known) - ids:
                del self._known[gone]
            new = sorted(ids - set(self._known))
            for engine, answer in zip(new, self.gather([(e, agent.identify, (), {}) for e in new], self.lost_after)):
                if not isinstance(answer, Unreachable):
                    self._known[engine] = answer
            self.hosts = self._group()
        return self.hosts

    def _group(self) -> dict[str, Host]:
        by_machine: dict[tuple[str, str], list[int]] = {}
        for engine, facts in sorted(self._known.items()):
            by_machine.setdefault((facts["hostname"], facts["boot_id"]), []).append(engine)
        hostnames = [hostname for hostname, _ in by_machine]
        hosts = {}
        for (hostname, boot_id), engines in by_machine.items():
            # Two machines may share a hostname; the boot id tells them apart.
            name = hostname if hostnames.count(hostname) == 1 else f"{hostname}#{boot_id[:8]}"
            facts = self._known[engines[0]]
            old = self.hosts.get(name)
            host = Host(name, hostname, boot_id, facts["kernel"], tuple(engines), bool(facts["root"]))
            if old is not None and old.engine == host.engine:
                host = replace(host, skew_ns=old.skew_ns, skew_error_ns=old.skew_error_ns)
            else:
                host = self._with_skew(host)
            hosts[name] = host
        return dict(sorted(hosts.items()))

    def _with_skew(self, host: Host) -> Host:
        best: tuple[int, int] | None = None
        for _ in range(_CLOCK_SAMPLES):
            before = time.time_ns()
            try:
                remote = self.call(host.engine, agent.clock)
            except Unreachable:
                return host
            after = time.time_ns()
            if best is None or after - before < best[1] * 2:
                best = (remote - (before + after) // 2, (after - before) // 2)
        assert best is not None
        return replace(host, skew_ns=best[0], skew_error_ns=best[1])

    def select(self, on: str | Sequence[str]) -> list[str]:
        """The hosts ``on`` names: ``"all"``, ``"web1,db1"`` or a list of names."""
        hosts = self.refresh()
        if not hosts:
            raise ClusterError("the cluster has no engines", hint="start some (ipcluster, or %bpf cluster start)")
        names = list(hosts) if on == "all" else [n.strip() for n in on.split(",")] if isinstance(on, str) else list(on)
        unknown = [n for n in names if n not in hosts]
        if unknown or not names:
            raise ArgumentError(
                f"no host named {', '.join(map(repr, unknown)) or 'at all'} in the cluster",
                hint=f"hosts are: {', '.join(hosts)} (or on='all')",
            )
        return list(dict.fromkeys(names))

    # -- calling engines ---------------------------------------------------------------

    def submit(self, engine: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        """Apply ``fn`` on ``engine`` without waiting; a dead engine gives a failed future."""
        try:
            future: concurrent.futures.Future[Any] = self.client[engine].apply_async(fn, *args, **kwargs)
        except Exception as exc:  # an engine that is gone cannot even be addressed
            future = concurrent.futures.Future()
            future.set_exception(Unreachable(f"engine {engine} is gone ({exc})"))
        return future

    def gather(
        self, calls: Iterable[tuple[int, Callable[..., Any], tuple[Any, ...], Mapping[str, Any]]], timeout: float
    ) -> list[Any]:
        """Run the calls at once; each answer, or an :class:`Unreachable` for an engine that did not answer."""
        futures = [self.submit(engine, fn, *args, **kwargs) for engine, fn, args, kwargs in calls]
        concurrent.futures.wait(futures, timeout=timeout)
        return [outcome(f) for f in futures]

    def call(self, engine: int, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Apply ``fn`` on ``engine`` and wait for its answer; :class:`Unreachable` if none comes in time."""
        answer = self.gather([(engine, fn, args, kwargs)], self.lost_after if timeout is None else timeout)[0]
        if isinstance(answer, Unreachable):
            raise answer
        return answer

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Disconnect from the controller (the engines and what they hold stay)."""
        if current_cluster() is self:
            set_current(None)
        self.client.close()

    def stop(self) -> None:
        """Stop the cluster this session started (controller and engines), then disconnect."""
        launched, self.launched = self.launched, None
        self.close()
        if launched is not None:
            from .launch import stop_launched

            stop_launched(launched)

    # -- display ---------------------------------------------------------------------------

    _HEADERS = ("host", "engines", "kernel", "boot id", "clock skew", "root")

    def _rows(self) -> list[tuple[object, ...]]:
        return [
            (h.name, ", ".join(map(str, h.engines)), h.kernel, h.boot_id[:8], h.skew_text(), "yes" if h.root else "no")
            for h in self.hosts.values()
        ]

    def __repr__(self) -> str:
        title = f"<bpfnb.Cluster: {len(self.hosts)} hosts, {len(self._known)} engines>"
        return f"{title}\n{_html.text_table(self._HEADERS, self._rows())}" if self.hosts else title

    def _repr_html_(self) -> str:
        parts = [_html.table(self._HEADERS, self._rows())] if self.hosts else [_html.note("No engines yet.")]
        not_root = [h.name for h in self.hosts.values() if not h.root]
        if not_root:
            parts.append(
                _html.note(f"Engines on {', '.join(not_root)} do not run as root: they cannot load programs.", kind="bad")
            )
        return _html.card(f"bpfnb cluster: {len(self.hosts)} hosts", *parts)


def outcome(future: concurrent.futures.Future[Any]) -> Any:
    """A finished call's answer, or :class:`Unreachable` (not done, engine died, engine gone)."""
    from ipyparallel.error import RemoteError

    if not future.done():
        return Unreachable("no answer in time")
    try:
        return future.result()
    except Unreachable as exc:
        return exc
    except RemoteError as exc:
        if exc.ename != "EngineError":
            raise  # a bug on the engine's side, not a fault of the network: show its traceback
        return Unreachable(f"the engine died ({exc.evalue})")
    except Exception as exc:  # ipyparallel's own errors for an engine that left
        return Unreachable(f"{type(exc).__name__}: {exc}")


def raise_remote(host: str, record: Mapping[str, Any]) -> None:
    """Raise the :class:`BpfnbError` an engine answered with, naming the host."""
    kind = getattr(errors, str(record.get("type")), BpfnbError)
    if not (isinstance(kind, type) and issubclass(kind, BpfnbError)):
        kind = BpfnbError
    error = BpfnbError.__new__(kind)
    BpfnbError.__init__(
        error, f"on {host}: {record['message']}", hint=record["hint"], details=record["details"], line=record["line"]
    )
    raise error


_current: Cluster | None = None


def current_cluster() -> Cluster | None:
    """The cluster connected last (``Program(source, on=...)`` loads there)."""
    return _current


def set_current(found: Cluster | None) -> None:
    global _current
    _current = found
