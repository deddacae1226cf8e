"""Small HTML building blocks for the notebook displays of bpfnb's objects."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["card", "note", "table", "text_table"]

_STYLE = (
    "<style>.bpfnb-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".bpfnb-card table{border-collapse:collapse;margin:4px 0 8px}"
    ".bpfnb-card th,.bpfnb-card td{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
    ".bpfnb-card .bpfnb-note{color:#8a6d00}.bpfnb-card .bpfnb-bad{color:#b00020}"
    ".bpfnb-card .bpfnb-ok{color:#1b7f3b}</style>"
)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """An HTML table; every cell is escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def note(text: str, *, kind: str = "note") -> str:
    """A one-line remark; ``kind`` is ``note``, ``bad`` or ``ok``."""
    return f'<div class="bpfnb-{kind}">{html.escape(text)}</div>'


def card(title: str, *parts: str) -> str:
    """A titled block holding already rendered ``parts``."""
    return f'{_STYLE}<div class="bpfnb-card"><b>{html.escape(title)}</b>{"".join(parts)}</div>'


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
