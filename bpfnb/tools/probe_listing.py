"""``bpfnb.probes()``: list what can be probed, like ``bpftrace -l`` and ``-lv``.

``probes("sched:*")`` lists tracepoints, ``probes("syscalls:sys_enter_openat")``
shows one tracepoint's argument fields (what ``args->`` holds in a
``TRACEPOINT_PROBE``), ``probes("kprobe:vfs_*")`` lists kernel functions,
``probes("uprobe:c:malloc*")`` a library's or program's function symbols.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..display.html import card, code_list, note, table
from ..errors import PrivilegeError, did_you_mean
from ..kernel.tracefs import Tracepoint, kprobe_functions, similar_tracepoints, tracepoint, tracepoints, uprobe_symbols

__all__ = ["ProbeList", "probes"]

_SHOWN = 200


@dataclass(frozen=True)
class ProbeList:
    """Probe names matching a pattern, shown as a list (``len``, iteration and ``in`` work)."""

    kind: str
    pattern: str
    names: tuple[str, ...]
    remark: str = ""

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def _title(self) -> str:
        return f"{len(self.names)} {self.kind} probe(s) matching {self.pattern!r}"

    def __repr__(self) -> str:
        lines = [self._title()] + [f"{self.kind}:{name}" for name in self.names[:_SHOWN]]
        if len(self.names) > _SHOWN:
            lines.append(f"... and {len(self.names) - _SHOWN} more")
        if self.remark:
            lines.append(self.remark)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        groups: dict[str, list[str]] = {}
        for name in self.names[:_SHOWN]:
            group, _, event = name.rpartition(":")
            groups.setdefault(group, []).append(event)
        header = {"tracepoint": "category", "uprobe": "binary"}.get(self.kind, self.kind)
        rows = [(group or self.kind, code_list(events)) for group, events in groups.items()]
        more = note(f"... and {len(self.names) - _SHOWN} more; narrow the pattern") if len(self.names) > _SHOWN else ""
        listing = table([header, "probes"], rows, nowrap=[header]) if rows else ""
        return card(self._title(), listing, more, note(self.remark) if self.remark else "")


def probes(pattern: str | None = None, *, binary: str | None = None) -> ProbeList | Tracepoint:
    """List probes like ``bpftrace -l``, or show one tracepoint's fields like ``bpftrace -lv``.

    Parameters
    ----------
    pattern : str, optional
        ``"sched:*"`` or ``"tracepoint:sched:*"`` (tracepoints; the default is
        all of them), ``"sched:sched_switch"`` (that tracepoint's fields),
        ``"kprobe:vfs_*"`` (kernel functions), ``"uprobe:/bin/bash:read*"`` or
        ``"uprobe:c:malloc*"`` (a binary's function symbols).
    binary : str, optional
        List this binary's function symbols; ``pattern`` then filters them.
    """
    pattern = pattern or "*"
    if binary is not None or pattern.startswith(("uprobe:", "uretprobe:", "u:")):
        if binary is None:
            _kind, binary, pattern = (pattern.split(":", 2) + ["*"])[:3]
        symbols = uprobe_symbols(binary, pattern or "*")
        return ProbeList("uprobe", pattern, tuple(f"{binary}:{name}" for name, _address in symbols))
    if pattern.startswith(("kprobe:", "kretprobe:")):
        try:
            return ProbeList("kprobe", pattern, tuple(kprobe_functions(pattern)))
        except PrivilegeError as exc:
            return ProbeList("kprobe", pattern, (), remark=exc.message + ". " + exc.hint)
    names = tracepoints(pattern)
    exact = not any(ch in pattern for ch in "*?[")
    if len(names) == 1 and exact:
        return tracepoint(names[0])
    remark = did_you_mean("No such tracepoint", pattern, similar_tracepoints(pattern), show=str) if exact and not names else ""
    return ProbeList("tracepoint", pattern, tuple(names), remark=remark)
