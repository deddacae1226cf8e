"""A running bpftrace script as a :class:`~bpfnb.engines.base.LoadedProgram`.

bpftrace loads, attaches and holds its programs and maps in a child process
(:mod:`.runner`); bpfnb never gets their fds. Its maps are reported as
frames (:class:`BpftraceMap`, parsed from bpftrace's periodic prints) and
its ``printf`` output as lines. What makes sense only for a program whose
functions bpfnb holds (their fds, ``test_run``) is refused with an
:class:`~bpfnb.errors.ArgumentError`.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, NoReturn

from ...errors import ArgumentError, Interrupted
from ..base import LoadOptions, TextOutput
from ..hooks import Probe
from .diagnostics import format_diagnostics, parse_stderr, without_noise
from .frames import map_frame, value_columns
from .output import MapSnapshot, OutputState
from .prepared import prepare
from .runner import Bpftrace
from .script import MapInfo, key_column_names

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BpftraceMap", "BpftraceProgram"]


class BpftraceMap:
    """One map of a running script: a :class:`~bpfnb.engines.base.ReportedMap` of its latest print."""

    def __init__(self, info: MapInfo, output: OutputState, period: float | None) -> None:
        self.name = info.name
        self.kind = info.function
        self.value_columns = value_columns(info.function)
        self.key_columns = tuple(key_column_names(info.keys, self.value_columns))
        self.period = period
        self._info = info
        self._output = output
        self._lock = threading.Lock()
        # The frame of the last snapshot parsed: displays and live plots ask often, and bpftrace prints
        # at most once per interval (a million keys take a fifth of a second to parse).
        self._parsed: tuple[MapSnapshot | None, pd.DataFrame] | None = None

    @property
    def histogram(self) -> bool:
        return self.kind in ("hist", "lhist")

    @property
    def taken(self) -> float | None:
        snapshot = self._output.map(self.name)
        return snapshot.time if snapshot else None

    def frame(self) -> pd.DataFrame:
        """The latest print as a frame of its own; ``attrs``: ``time`` (when printed, or None) and ``final``."""
        snapshot = self._output.map(self.name)
        with self._lock:
            if self._parsed is None or self._parsed[0] is not snapshot:
                kind = snapshot.kind if snapshot else "map"
                frame = map_frame(kind, snapshot.data if snapshot else None, self._info)
                frame.attrs.update(time=snapshot.time if snapshot else None, final=bool(snapshot and snapshot.final))
                self._parsed = (snapshot, frame)
            return self._parsed[1].copy()

    def wait(self, newer_than: float, timeout: float) -> bool:
        return self._output.wait_newer(self.name, newer_than, timeout)


class BpftraceProgram:
    """A bpftrace script run by :class:`~.runner.Bpftrace`, started (attached) on construction.

    Raises what :meth:`~.runner.Bpftrace.start` raises; Ctrl-C while it starts
    is :class:`~bpfnb.errors.Interrupted`, with no bpftrace left behind.
    """

    engine = "bpftrace"

    def __init__(self, source: str, options: LoadOptions) -> None:
        if not options.attach or options.probes or options.cflags:
            raise ArgumentError(
                "a bpftrace script attaches every probe it names, by itself: "
                "attach=False, probes= and cflags= do not apply to it"
            )
        self.source = source
        self.first_line = options.first_line
        prepared = prepare(source, interval_ms=options.interval_ms, first_line=options.first_line)
        self._run = Bpftrace(prepared, env=options.env)
        try:
            self._run.start()
        except KeyboardInterrupt:
            raise Interrupted("starting bpftrace") from None
        self.log = "\n".join(without_noise(self._run.stderr))
        warnings = [d for d in parse_stderr(self._run.stderr, prepared) if d.level == "warning"]
        self.warnings = format_diagnostics(warnings, prepared)
        period = prepared.interval_ms / 1000 if prepared.interval_ms else None
        self._maps = {name: BpftraceMap(info, self._run.output, period) for name, info in prepared.maps.items()}

    @property
    def functions(self) -> list[str]:
        return []

    @property
    def attachments(self) -> list[Probe]:
        """The script's probes as written, while bpftrace runs (wildcards stand for every probe they match)."""
        return [probe.hook() for probe in self._run.prepared.probes] if self._run.running else []

    @property
    def sockets(self) -> dict[str, int]:
        return {}

    def loaded_functions(self) -> dict[str, list[str]]:
        return {}

    def map_names(self) -> list[str]:
        return list(self._maps)

    def map_spec(self, name: str) -> BpftraceMap:
        return self._maps[name]

    def _refuse(self, what: str) -> NoReturn:
        raise ArgumentError(
            f"a bpftrace script's programs are held by bpftrace, not by bpfnb: {what}",
            hint="read its maps with prog['@name'].df() and its printf output with prog.stream()",
        )

    def function_fd(self, function: str) -> int | None:
        self._refuse("they have no fds here")

    def program_type(self, function: str) -> str | None:
        self._refuse("they cannot be test-run")

    def load_function(self, function: str, prog_type: str) -> int:
        self._refuse("they cannot be loaded again or test-run")

    def event_type(self, buffer: str, type_name: str | None = None) -> type:
        self._refuse("its printf output is prog.stream(), without a name")

    def loss_counter(self) -> tuple[int, int] | None:
        return None

    def text_output(self) -> TextOutput:
        return self._run.output.text

    def release(self) -> None:
        self._run.stop()
