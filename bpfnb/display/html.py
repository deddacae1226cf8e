"""Small HTML building blocks for the notebook displays of bpfnb's objects.

Every text is escaped unless it is :class:`Markup`, which building blocks
produce and :func:`code` makes from text with `backticked` commands.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

__all__ = ["Markup", "card", "code", "facts", "note", "table", "text_table"]

_STYLE = (
    "<style>.bpfnb-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px}"
    ".bpfnb-card table{border-collapse:collapse;margin:4px 0 8px}"
    ".bpfnb-card th,.bpfnb-card td{padding:2px 10px;text-align:left;border-bottom:1px solid #ddd}"
    ".bpfnb-card .bpfnb-note{color:#8a6d00}.bpfnb-card .bpfnb-bad{color:#b00020}"
    ".bpfnb-card .bpfnb-ok{color:#1b7f3b}</style>"
)


class Markup(str):
    """HTML that is already safe: building blocks put it in as it is."""


def _cell(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def code(text: str) -> Markup:
    """``text`` escaped, with its `backticked` commands set as code."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text)))


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Markup:
    """An HTML table; every cell is escaped unless it is :class:`Markup`."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def facts(pairs: Iterable[tuple[str, object]]) -> Markup:
    """A two-column table of names and values, the names as row headers."""
    body = "".join(f"<tr><th>{html.escape(name)}</th><td>{_cell(value)}</td></tr>" for name, value in pairs)
    return Markup(f"<table><tbody>{body}</tbody></table>")


def note(text: str, *, kind: str = "note") -> Markup:
    """A one-line remark; ``kind`` is ``note``, ``bad`` or ``ok``."""
    return Markup(f'<div class="bpfnb-{kind}">{_cell(text)}</div>')


def card(title: str, *parts: str) -> Markup:
    """A titled block holding already rendered ``parts``."""
    return Markup(f'{_STYLE}<div class="bpfnb-card"><b>{html.escape(title)}</b>{"".join(parts)}</div>')


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
