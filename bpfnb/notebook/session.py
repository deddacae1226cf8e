"""The programs of one notebook session, by the names their cells gave them."""

from __future__ import annotations

from ..errors import AttachError, BpfnbError
from ..program import Program
from ..tools.session_listing import SessionListing
from .options import CellOptions

__all__ = ["Session", "SessionListing"]


class Session:
    """Named programs; loading a name again replaces the program it named once the new one works."""

    def __init__(self) -> None:
        self.programs: dict[str, Program] = {}

    def load(self, options: CellOptions, source: str, *, first_line: int = 1) -> Program:
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

    @staticmethod
    def _build(options: CellOptions, source: str, first_line: int) -> Program:
        return Program(
            source,
            name=options.name,
            engine=options.engine,
            cflags=options.cflags,
            debug=options.debug,
            attach=options.attach,
            probes=options.probes,
            first_line=first_line,
            trust_headers=options.trust_headers,
            interval_ms=options.interval_ms,
            env=dict(options.env),
        )

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


def _holds_hook_of(program: Program, error: AttachError) -> bool:
    """Whether ``error`` comes from a hook ``program`` holds and cannot share (an XDP device)."""
    return error.hook is not None and any((p.kind, p.target) == error.hook for p in program.attachments)


def _kept(error: BpfnbError, old: Program | None) -> BpfnbError:
    """``error``, saying that the program the cell made before still runs."""
    if old is not None and not old.closed:
        kept = f"The cell's previous program {old.name!r} is still attached and running, with its maps, streams and plots."
        error.hint = f"{error.hint} {kept}".strip()
    return error
