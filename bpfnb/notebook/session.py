"""The programs of one notebook session, by the names their cells gave them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..display import html as _html
from ..engines.hooks import Probe
from ..program import Program

__all__ = ["Session", "SessionListing"]


class Session:
    """Named programs; loading a name again first detaches the program it named."""

    def __init__(self) -> None:
        self.programs: dict[str, Program] = {}
        self._header_notice_given = False

    def load(
        self,
        name: str,
        source: str,
        *,
        cflags: Sequence[str] = (),
        debug: int = 0,
        attach: bool = True,
        probes: Sequence[Probe] = (),
        first_line: int = 1,
    ) -> Program:
        """Replace the program called ``name`` by one built from ``source``."""
        self.detach(name)
        program = Program(
            source, name=name, cflags=cflags, debug=debug, attach=attach, probes=probes, first_line=first_line
        )
        self.programs[name] = program
        return program

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

    def header_notice(self) -> str | None:
        """The headers-mismatch notice, the first time it is asked for in this session only."""
        if self._header_notice_given:
            return None
        from ..kernel.environment import header_notice

        self._header_notice_given = True
        return header_notice()

    def listing(self) -> SessionListing:
        """What ``%bpf ls`` shows: programs, their hooks, maps and running resources."""
        return SessionListing(
            [(name, program) for name, program in self.programs.items() if not program.closed]
        )


class SessionListing:
    """A table of a session's programs with what each one holds."""

    def __init__(self, programs: list[tuple[str, Program]]) -> None:
        self.rows = [
            (
                name,
                program.state,
                "; ".join(f"{p.kind} {p.target}" for p in program.attachments) or "-",
                ", ".join(program.map_names()) or "-",
                "; ".join(_describe(r) for r in program.resources) or "-",
            )
            for name, program in programs
        ]

    _HEADERS = ("name", "state", "hooks", "maps", "running")

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return "no bpfnb programs in this session"
        return _html.text_table(self._HEADERS, self.rows)

    def _repr_html_(self) -> str:
        if not self.rows:
            return _html.card("bpfnb session", _html.note("No programs: run a %%bpf cell."))
        return _html.card("bpfnb session", _html.table(self._HEADERS, self.rows))


def _describe(resource: Any) -> str:
    return repr(resource).splitlines()[0]
