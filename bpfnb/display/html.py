"""Small HTML building blocks for the notebook displays of bpfnb's objects.

Every text is escaped unless it is :class:`Markup`, which building blocks
produce and :func:`code` makes from text with `backticked` commands.

The blocks fit the output area they land in: prose is left-aligned and wraps,
tables never grow wider than the cell (JupyterLab's own style centres tables
and right-aligns their cells, which suits numbers but not sentences), and the
documentation of the kernel's headers is reflowed (:func:`prose`).
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Collection, Iterable, Sequence

__all__ = [
    "Markup",
    "card",
    "code",
    "code_list",
    "details",
    "facts",
    "heading",
    "link",
    "note",
    "prose",
    "table",
    "text_table",
]

# The selectors carry two classes and an element, one more than JupyterLab's
# `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td` (which right-aligns).
_STYLE = (
    "<style>"
    ".bpfnb-card{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;max-width:100%;"
    "text-align:left;overflow-wrap:anywhere;line-height:1.4}"
    ".bpfnb-card table.bpfnb-t{border-collapse:collapse;margin:4px 0 8px;max-width:100%;table-layout:auto}"
    ".bpfnb-card table.bpfnb-t th,.bpfnb-card table.bpfnb-t td{padding:2px 10px 2px 0;text-align:left;"
    "vertical-align:top;border-bottom:1px solid var(--jp-border-color2,#ddd);white-space:normal;"
    "overflow-wrap:anywhere;line-height:1.35}"
    ".bpfnb-card table.bpfnb-t th{white-space:nowrap}"
    ".bpfnb-card table.bpfnb-t .bpfnb-n{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}"
    ".bpfnb-card table.bpfnb-t .bpfnb-w{white-space:nowrap}"
    ".bpfnb-card .bpfnb-note{color:#8a6d00;margin:2px 0}.bpfnb-card .bpfnb-bad{color:#b00020}"
    ".bpfnb-card .bpfnb-ok{color:#1b7f3b}.bpfnb-card .bpfnb-fix{margin-top:2px}"
    ".bpfnb-card .bpfnb-h{font-weight:bold;margin:8px 0 2px}"
    ".bpfnb-card .bpfnb-list code{display:inline-block;margin:0 6px 2px 0}"
    ".bpfnb-card p{margin:4px 0}.bpfnb-card pre{margin:4px 0;white-space:pre-wrap}"
    ".bpfnb-card details>summary{cursor:pointer;margin:4px 0}"
    ".bpfnb-card dl{margin:4px 0}.bpfnb-card dd{margin:0 0 4px 20px}"
    "</style>"
)


class Markup(str):
    """HTML that is already safe: building blocks put it in as it is."""


def _cell(value: object) -> str:
    return value if isinstance(value, Markup) else html.escape(str(value))


def code(text: str) -> Markup:
    """``text`` escaped, with its `backticked` commands set as code."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text)))


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Collection[str] = (),
    nowrap: Collection[str] = (),
) -> Markup:
    """An HTML table; every cell is escaped unless it is :class:`Markup`.

    Cells are left-aligned and wrap; the columns named in ``numeric`` are
    right-aligned and kept on one line, those in ``nowrap`` kept on one line.
    """
    classes = [
        ' class="bpfnb-n"' if h in numeric else ' class="bpfnb-w"' if h in nowrap else "" for h in headers
    ]
    head = "".join(f"<th{c}>{html.escape(h)}</th>" for h, c in zip(headers, classes))
    body = "".join(
        "<tr>" + "".join(f"<td{c}>{_cell(v)}</td>" for v, c in zip(row, classes)) + "</tr>" for row in rows
    )
    return Markup(f'<table class="bpfnb-t"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def facts(pairs: Iterable[tuple[str, object]]) -> Markup:
    """A two-column table of names and values, the names as row headers."""
    body = "".join(f"<tr><th>{html.escape(name)}</th><td>{_cell(value)}</td></tr>" for name, value in pairs)
    return Markup(f'<table class="bpfnb-t"><tbody>{body}</tbody></table>')


def note(text: str, *, kind: str = "note") -> Markup:
    """A one-line remark; ``kind`` is ``note``, ``bad`` or ``ok``."""
    return Markup(f'<div class="bpfnb-{kind}">{_cell(text)}</div>')


def heading(text: str) -> Markup:
    """A sub-heading inside a card."""
    return Markup(f'<div class="bpfnb-h">{_cell(text)}</div>')


def link(text: str, href: str) -> Markup:
    """A link that opens ``href`` in a new browser tab."""
    return Markup(f'<a href="{html.escape(href)}" target="_blank" rel="noopener">{_cell(text)}</a>')


def code_list(names: Iterable[str]) -> Markup:
    """Names set as code, side by side, wrapping at the edge of the output."""
    items = " ".join(f"<code>{html.escape(name)}</code>" for name in names)
    return Markup(f'<div class="bpfnb-list">{items}</div>')


def details(summary: str, *parts: str, open: bool = False) -> Markup:
    """A block that shows only ``summary`` until it is clicked open."""
    state = " open" if open else ""
    return Markup(f"<details{state}><summary>{_cell(summary)}</summary>{''.join(parts)}</details>")


def card(title: str, *parts: str) -> Markup:
    """A titled block holding already rendered ``parts``."""
    return Markup(f'{_STYLE}<div class="bpfnb-card"><b>{html.escape(title)}</b>{"".join(parts)}</div>')


# -- prose from the kernel's headers --------------------------------------------

_BULLET = re.compile(r"^([*-]|\d+\.)\s+")


def _inline(text: str) -> str:
    """The header's inline markup: ````literal````, ``**bold**``, ``*italic*``, ``name\\ ()``."""
    escaped = html.escape(text).replace("\\ ", "").replace("\\/", "/")
    escaped = re.sub(r"``(.+?)``", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    return re.sub(r"\*(\S(?:.*?\S)?)\*", r"<i>\1</i>", escaped)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _blocks(text: str) -> Iterable[list[str]]:
    block: list[str] = []
    for line in text.expandtabs(8).splitlines():
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def _definitions(block: list[str], base: int) -> str:
    """Terms at the paragraphs' indentation, each followed by its deeper-indented definition."""
    terms: list[tuple[str, list[str]]] = []
    for line in block:
        if _indent(line) == base:
            terms.append((line.strip(), []))
        else:
            terms[-1][1].append(line.strip())
    items = "".join(f"<dt>{_inline(term)}</dt><dd>{_inline(' '.join(words))}</dd>" for term, words in terms)
    return f"<dl>{items}</dl>"


def prose(text: str) -> Markup:
    """Documentation written with hard line breaks (reStructuredText-like), reflowed as HTML.

    Lines of a paragraph are joined, so the text wraps at the width of the
    output rather than where the header's author broke it. Lines that start
    with ``*``, ``-`` or ``1.`` are list items; a line followed by deeper
    indented ones is a term and its definition (a flag and what it does); a
    block indented deeper than the paragraphs (code) or following a ``::``
    keeps its lines.
    """
    out: list[str] = []
    base = min((_indent(line) for block in _blocks(text) for line in block), default=0)
    literal_next = False
    for block in _blocks(text):
        if [line.strip() for line in block] == ["::"]:
            literal_next = True
            continue
        if _BULLET.match(block[0].strip()):
            items: list[str] = []
            for line in block:
                if _BULLET.match(line.strip()) or not items:
                    items.append(_BULLET.sub("", line.strip()))
                else:
                    items[-1] += " " + line.strip()
            out.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in items) + "</ul>")
        elif literal_next or all(_indent(line) > base for line in block):
            out.append(f"<pre>{html.escape(textwrap.dedent(chr(10).join(block)))}</pre>")
        elif len(block) > 1 and _indent(block[0]) == base < _indent(block[1]):
            out.append(_definitions(block, base))
        else:
            paragraph = " ".join(line.strip() for line in block)
            out.append(f"<p>{_inline(paragraph.removesuffix(':') if paragraph.endswith('::') else paragraph)}</p>")
        literal_next = block[-1].endswith("::")
    return Markup("".join(out))


def text_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table with columns padded to their widest cell."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
