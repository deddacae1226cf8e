"""The programs of one notebook session, by the names their cells gave them, and its recording or replay."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeGuard, Union

from ..errors import AttachError, BpfnbError, ClusterError
from ..program import Program
from ..tools.session_listing import SessionListing
from .options import CellOptions

if TYPE_CHECKING:
    from ..capture.recorded import Capture, RecordedProgram
    from ..capture.recorder import Recorder
    from ..capture.replaying import ReplayChoice, Replaying
    from ..remote.connection import Cluster
    from ..remote.program import ClusterProgram

#: What a cell makes: a program here, or one on a cluster's hosts; or, replaying a capture, one it recorded.
AnyProgram = Union[Program, "ClusterProgram", "RecordedProgram"]

__all__ = ["Session", "SessionListing"]


class Session:
    """Named programs; loading a name again replaces the program it named once the new one works.

    While a recording runs (:meth:`record`), every program the session loads
    here is recorded too; while the session replays a capture (:meth:`replay`),
    cells get the programs the capture recorded instead of loading any.
    """

    def __init__(self) -> None:
        self.programs: dict[str, AnyProgram] = {}
        #: The cluster ``%%bpf NAME --on HOSTS`` loads on.
        self.cluster: Cluster | None = None
        self.recorder: Recorder | None = None
        self.replaying: Replaying | None = None

    def load(self, options: CellOptions, source: str, *, first_line: int = 1) -> AnyProgram:
        """The cell's program: built and loaded, or, when replaying a capture, the one it recorded."""
        if self.replaying is not None:
            recorded = self.replaying.program(options.name, source)
            self.programs[options.name] = recorded
            return recorded
        program = self._load(options, source, first_line)
        if self.recorder is not None and self.recorder.running and _live(program):
            self.recorder.add(program)
        return program

    def _load(self, options: CellOptions, source: str, first_line: int) -> AnyProgram:
        """Replace the program called ``options.name`` by one built from ``source``.

        The old program keeps running until the new one has loaded and
        attached; if the new one fails, the old one (its maps, streams and
        plots) is kept and the error says so. Only a new program that needs
        a hook the old one holds (an XDP device) waits for the old one to go.
        """
        old = self.programs.get(options.name)
        try:
            program = self._build(options, source, first_line)
        except AttachError as exc:
            if old is None or not _holds_hook_of(old, exc):
                raise _kept(exc, old)
            self.detach(options.name)
            program = self._build(options, source, first_line)
        except BpfnbError as exc:
            raise _kept(exc, old) from None
        if old is not None and old is not program:
            old.detach()
        self.programs[options.name] = program
        return program

    def _build(self, options: CellOptions, source: str, first_line: int) -> AnyProgram:
        settings: dict[str, Any] = {
            "name": options.name,
            "engine": options.engine,
            "cflags": options.cflags,
            "debug": options.debug,
            "attach": options.attach,
            "probes": options.probes,
            "first_line": first_line,
            "trust_headers": options.trust_headers,
            "interval_ms": options.interval_ms,
            "env": dict(options.env),
        }
        if options.on is None:
            return Program(source, **settings)
        from ..remote.program import ClusterProgram

        return ClusterProgram(self.connected(), source, on=options.on, strict=options.strict, **settings)

    # -- the cluster ---------------------------------------------------------------

    def connected(self) -> Cluster:
        """The session's cluster; an error saying how to connect one if there is none."""
        if self.cluster is None:
            raise ClusterError(
                "no cluster is connected", hint="%bpf cluster connect --profile NAME (or --url-file F), or %bpf cluster start"
            )
        return self.cluster

    def connect(self, *, profile: str | None, url_file: str | None, engines: int) -> Cluster:
        """Connect to a running cluster (it becomes the session's cluster)."""
        from ..remote.api import cluster

        self.cluster = cluster(profile, url_file=url_file, engines=engines)
        return self.cluster

    def start_cluster(self, hosts: list[str], *, engines: int, profile: str | None, user: str | None) -> Cluster:
        """Start a controller and engines (here, or on ``hosts`` over SSH) that stop with this session."""
        from ..remote.api import cluster
        from ..remote.launch import start, stop_launched
        from ..tools.kernelspec import engine_command

        started = start(hosts, engines=engines, profile=profile, engine_cmd=engine_command(user))
        try:
            self.cluster = cluster(client=started.connect_client_sync(), engines=engines * max(len(hosts), 1))
        except BpfnbError:
            stop_launched(started)
            raise
        self.cluster.launched = started
        return self.cluster

    def stop_cluster(self) -> list[str]:
        """Detach the cluster's programs, stop the cluster if the session started it, and disconnect."""
        found = self.connected()
        names = [n for n, p in self.programs.items() if getattr(p, "cluster", None) is found]
        for name in names:
            self.detach(name)
        found.stop()
        self.cluster = None
        return names

    def detach(self, name: str) -> bool:
        """Detach the program called ``name``; False if there is none."""
        program = self.programs.pop(name, None)
        if program is None:
            return False
        program.detach()
        return True

    def detach_all(self) -> list[str]:
        """Detach every program; return their names."""
        names = list(self.programs)
        for name in names:
            self.detach(name)
        return names

    def listing(self) -> SessionListing:
        """What ``%bpf ls`` shows: programs, their hooks, maps and running resources."""
        return SessionListing(
            [(name, program) for name, program in self.programs.items() if not program.closed]
        )

    # -- captures -----------------------------------------------------------------

    def cell_starts(self, source: str) -> None:
        """A notebook cell starts: a replay moves to where the recording was when it ended."""
        if self.replaying is not None:
            self.replaying.reach(source)

    def cell_ended(self, source: str) -> None:
        """A notebook cell ended: a recording snapshots the maps and notes the moment."""
        if self.recorder is not None and self.recorder.running:
            self.recorder.mark(source)

    def record(self, path: str | os.PathLike[str], *, max_bytes: int | None, every: float) -> Recorder:
        """Record the session's programs, and those it loads from now on, to a new capture directory."""
        from ..capture.recorder import Recorder

        if self.recorder is not None and self.recorder.running:
            raise BpfnbError(f"the session records to {self.recorder.path} already", hint="stop it with %bpf record stop")
        if self.replaying is not None:
            raise BpfnbError("this notebook replays a capture: there is nothing live to record")
        live = [p for p in self.programs.values() if _live(p)]
        self.recorder = Recorder(path, live, max_bytes=max_bytes, snapshot_interval=every)
        return self.recorder

    def stop_recording(self) -> Capture:
        """End the recording; the capture, loaded."""
        if self.recorder is None:
            raise BpfnbError("the session is not recording", hint="start with %bpf record NAME")
        recorder, self.recorder = self.recorder, None
        return recorder.stop()

    def replay(self, path: str | os.PathLike[str], *, fallback: bool) -> ReplayChoice:
        """Answer the cells from the capture at ``path`` (with ``fallback``, only if programs cannot be loaded here)."""
        from ..capture import notes
        from ..capture.replaying import ReplayChoice

        choice = ReplayChoice(path, fallback=fallback)
        if choice.replaying is not None and self.recorder is not None:
            raise BpfnbError("the session is recording", hint="stop it with %bpf record stop before replaying a capture")
        self.replaying = choice.replaying
        notes.replaying(choice.capture if choice.replaying is not None else None)
        return choice


def _holds_hook_of(program: AnyProgram, error: AttachError) -> bool:
    """Whether ``error`` comes from a hook ``program`` holds and cannot share (an XDP device)."""
    return error.hook is not None and any((p.kind, p.target) == error.hook for p in program.attachments)


def _kept(error: BpfnbError, old: AnyProgram | None) -> BpfnbError:
    """``error``, saying that the program the cell made before still runs."""
    if old is not None and not old.closed:
        kept = f"The cell's previous program {old.name!r} is still attached and running, with its maps, streams and plots."
        error.hint = f"{error.hint} {kept}".strip()
    return error


def _live(program: AnyProgram) -> TypeGuard[Program | ClusterProgram]:
    """Whether ``program`` runs now, here or on a cluster's hosts (what a recording follows), not one replayed."""
    from ..remote.program import ClusterProgram

    return isinstance(program, (Program, ClusterProgram)) and not program.closed
