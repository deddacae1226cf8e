"""The script bpfnb hands to bpftrace: the user's text, then a probe that prints the maps.

bpftrace prints a map only at exit or when a probe calls ``print(@map)``. To
show current values while a script runs, bpfnb appends one probe::

    interval:ms:1000 { print(@a); print(@b); printf("<marker>\\n"); }

It goes *after* the user's text so that every line the user wrote keeps its
number: bpftrace's ``stdin:LINE:COL`` positions become cell lines by a fixed
offset. The marker line closes one round of prints. bpftrace prints nothing
for an empty map (after ``clear()``, or when every key was deleted), so a map
missing from a round is empty, not unchanged.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ...errors import ArgumentError
from .script import MapInfo, ScriptProbe, find_maps, find_probes

__all__ = ["DEFAULT_INTERVAL_MS", "PreparedScript", "prepare"]

#: Milliseconds between two prints of the maps, by default.
DEFAULT_INTERVAL_MS = 1000


@dataclass(frozen=True)
class PreparedScript:
    """The script bpftrace runs, and how to read its positions back.

    Attributes
    ----------
    source
        The user's text exactly as given.
    text
        What bpftrace runs: ``source``, then the printing probe (if any).
    maps
        The maps of ``source`` by name, in order of first assignment.
    probes
        The probes of ``source`` as written.
    printed
        The maps the printing probe prints each round.
    marker
        The ``printf`` line (without its newline) that ends a round.
    interval_ms
        The period of the printing probe; 0 when none was added.
    first_line
        The cell line that holds the script's line 1.
    """

    source: str
    text: str
    maps: dict[str, MapInfo]
    probes: tuple[ScriptProbe, ...]
    printed: tuple[str, ...]
    marker: str
    interval_ms: int
    first_line: int = 1

    def cell_line(self, script_line: int) -> int | None:
        """The cell line of the script's line ``script_line``; None for a line bpfnb added."""
        if 1 <= script_line <= (len(self.source.splitlines()) or 1):
            return script_line + self.first_line - 1
        return None

    def position(self, offset: int) -> tuple[int, int]:
        """Script line and column (both from 1) of ``offset`` in the source."""
        line_start = self.source.rfind("\n", 0, offset) + 1
        return self.source.count("\n", 0, offset) + 1, offset - line_start + 1


def prepare(source: str, *, interval_ms: int = DEFAULT_INTERVAL_MS, first_line: int = 1) -> PreparedScript:
    """The script bpfnb runs for the user's ``source``.

    Parameters
    ----------
    source
        The user's bpftrace program (a cell below its ``%%bpftrace`` line).
    interval_ms
        Milliseconds between prints of every map; 0 adds no printing probe
        (maps then show only at exit, or when the script prints them itself).
    first_line
        The cell line holding the script's line 1.
    """
    if isinstance(interval_ms, bool) or not isinstance(interval_ms, int) or interval_ms < 0:
        raise ArgumentError(
            f"interval_ms must be a whole number of milliseconds (0: print maps at exit only), not {interval_ms!r}"
        )
    maps = find_maps(source)
    # Random, so that no printf of the user's can be taken for it.
    marker = f"bpfnb-{secrets.token_hex(6)}"
    text = source
    if maps and interval_ms:
        prints = " ".join(f"print({name});" for name in maps)
        # A newline first: the user's last line may be a // comment without one.
        text = f'{source}\ninterval:ms:{interval_ms} {{ {prints} printf("{marker}\\n"); }}\n'
    else:
        interval_ms = 0
    printed = tuple(maps) if interval_ms else ()
    return PreparedScript(source, text, maps, tuple(find_probes(source)), printed, marker, interval_ms, first_line)
