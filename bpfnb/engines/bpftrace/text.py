"""Lexing a bpftrace script just enough to find its maps and probes: comments, strings, brackets.

Everything here keeps offsets: a masked text has the length of the source, so
a position found in one is the same position in the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["balanced", "int_literal", "mask", "split_top_level"]

_TOKEN = re.compile(
    r"""
      (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>"(?:[^"\\\n]|\\.)*"?)
    | (?P<other>[^"/]+|/)
    """,
    re.VERBOSE | re.DOTALL,
)


def mask(source: str) -> str:
    """``source`` with comments and the contents of strings blanked (newlines kept), offsets unchanged.

    A ``@map`` or a brace inside a comment or a string is then no code.
    """
    out = []
    for match in _TOKEN.finditer(source):
        kind, text = match.lastgroup, match.group()
        if kind == "comment":
            out.append(re.sub(r"[^\n]", " ", text))
        elif kind == "string" and len(text) > 1:
            out.append('"' + re.sub(r"[^\n]", " ", text[1:-1]) + text[-1])
        else:
            out.append(text)
    return "".join(out)


def _outside_strings(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """``(index, character)`` of ``text`` from ``start`` on, string literals (quotes and all) left out."""
    quoted = False
    i = start
    while i < len(text):
        ch = text[i]
        if quoted:
            if ch == "\\":
                i += 1  # an escaped character, a quote too
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
        else:
            yield i, ch
        i += 1


def balanced(text: str, start: int, opening: str, closing: str) -> int:
    """The index just past the bracket that closes ``text[start]``, or -1 (strings are skipped)."""
    depth = 0
    for i, ch in _outside_strings(text, start):
        if ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def split_top_level(text: str) -> list[str]:
    """``text`` split on the commas outside brackets and strings, each part stripped."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in _outside_strings(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail or parts:
        parts.append(tail)
    return parts


def int_literal(text: str) -> int | None:
    """The value of a bpftrace integer literal (decimal, or hex with ``0x``), None for anything else."""
    match = re.fullmatch(r"(-?)(0[xX][0-9a-fA-F]+|\d+)", text.strip())
    if match is None:
        return None
    value = int(match[2], 0) if match[2][:2].lower() == "0x" else int(match[2])
    return -value if match[1] else value
