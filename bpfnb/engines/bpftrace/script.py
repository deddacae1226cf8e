"""What a bpftrace script's text says: its probes, its maps, and what fills each map.

Pure text work on the script as the user wrote it (no bpftrace is run). The
maps' fillers and key expressions decide the columns of their frames
(:mod:`.frames`); the probes are what the program reports as attached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..hooks import BPFTRACE, Probe
from .text import balanced, int_literal, mask, split_top_level

__all__ = [
    "AGGREGATES",
    "PROVIDERS",
    "MapInfo",
    "ScriptProbe",
    "find_maps",
    "find_probes",
    "provider",
    "key_column_names",
]

#: bpftrace's functions whose result is stored in a map.
AGGREGATES = ("count", "sum", "avg", "min", "max", "stats", "hist", "lhist")

#: bpftrace 0.17's probe types and their short names. (rawtracepoint came later:
#: 0.17 aborts on it with "Invalid probe type made it to attachpoint parser".)
PROVIDERS = {
    "BEGIN": "",
    "END": "",
    "kprobe": "k",
    "kretprobe": "kr",
    "uprobe": "u",
    "uretprobe": "ur",
    "usdt": "U",
    "tracepoint": "t",
    "profile": "p",
    "interval": "i",
    "software": "s",
    "hardware": "h",
    "watchpoint": "w",
    "asyncwatchpoint": "aw",
    "kfunc": "f",
    "kretfunc": "fr",
    "iter": "it",
}
_FULL_NAMES = {alias: name for name, alias in PROVIDERS.items() if alias} | {name: name for name in PROVIDERS}

# Builtins whose value is always an integer or always a string: they split the
# comma-joined multi-part keys bpftrace prints (see frames.py). Anything else
# (``args->x``, ``$v``, arithmetic) has a type only the data can tell.
_INT_BUILTINS = frozenset(
    ["pid", "tid", "uid", "gid", "cpu", "cgroup", "nsecs", "elapsed", "numaid", "cpid", "rand", "retval", "curtask"]
    + [f"arg{i}" for i in range(10)]
    + [f"sarg{i}" for i in range(10)]
)
_STR_BUILTINS = frozenset(["comm", "username", "func", "probe", "kstack", "ustack"])
_STR_FUNCTIONS = frozenset(
    ["str", "ksym", "usym", "kstack", "ustack", "ntop", "macaddr", "path", "buf", "strftime", "cgroup_path"]
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
# Lines of the C preprocessor (#include, #define): bpftrace runs them through it first.
_PREPROCESSOR = re.compile(r"^[ \t]*#[^\n]*", re.MULTILINE)
# Text before a block that defines a type rather than naming probes.
_TYPE_DEFINITION = re.compile(r"[\s;]*(?:struct|union|enum|typedef)\b")
# One probe of a comma-separated list; a ; ends a type definition before it.
_PROBE = re.compile(r"[^,\s;][^,;]*")


@dataclass(frozen=True)
class MapInfo:
    """One map as the script text shows it.

    Attributes
    ----------
    name
        With its ``@`` (``"@"`` for the anonymous map).
    function
        The aggregate that fills it (one of :data:`AGGREGATES`), or ``"value"``
        for a plain assignment (``@x = nsecs``, ``@x++``).
    keys
        The key expressions as written, one per key part (empty: no key).
    lhist
        ``(min, max, step)`` of an ``lhist()`` whose three are literals.
    line
        The script line (from 1) of the map's first assignment.
    """

    name: str
    function: str
    keys: tuple[str, ...] = ()
    lhist: tuple[int, int, int] | None = None
    line: int = 0

    @property
    def key_types(self) -> tuple[str | None, ...]:
        """``"int"``, ``"str"`` or None (the text does not tell) for each key part."""
        return tuple(_expression_type(k) for k in self.keys)


@dataclass(frozen=True)
class ScriptProbe:
    """One probe of the script as written (``tracepoint:sched:sched_switch``, wildcards kept)."""

    spec: str
    #: Where it starts in the script text.
    offset: int

    @property
    def provider(self) -> str | None:
        """The full name of its probe type (``tracepoint`` for ``t:...``); None for one bpftrace does not know."""
        return provider(self.spec)

    def hook(self) -> Probe:
        """The probe as bpfnb lists hooks: kind ``bpftrace``, the spec as target and as function."""
        return Probe(BPFTRACE, self.spec, self.spec)


def provider(spec: str) -> str | None:
    """The full name of the probe type of ``spec`` (a probe as written, or its start); None if it is no known type."""
    return _FULL_NAMES.get(spec.partition(":")[0])


def find_probes(source: str) -> list[ScriptProbe]:
    """The probes the script attaches, in the order written.

    A probe list is the text before a block at the top level, up to its
    predicate (a ``/`` after white space: ``uprobe:/bin/sh:main`` keeps its
    path). Preprocessor lines and type definitions (``struct x { ... };``)
    name no probe.
    """
    code = _PREPROCESSOR.sub(lambda m: " " * len(m[0]), mask(source))
    found: list[ScriptProbe] = []
    at = 0
    while (brace := code.find("{", at)) >= 0:
        header, header_at = code[at:brace], at
        end = balanced(code, brace, "{", "}")
        at = len(code) if end < 0 else end
        if _TYPE_DEFINITION.match(header):
            continue
        predicate = re.search(r"\s/", header)
        for part in _PROBE.finditer(header[: predicate.start()] if predicate else header):
            found.append(ScriptProbe(part[0].rstrip(), header_at + part.start()))
    return found


def find_maps(source: str) -> dict[str, MapInfo]:
    """The maps a script assigns to, with what fills each, in order of first assignment.

    The first aggregate seen wins over a plain assignment (``@x = 0`` as a
    reset); bpftrace itself rejects a map filled by two different aggregates.
    A map that is only read (``@x[tid]`` in a predicate, ``delete(@x[tid])``,
    ``print(@x)``) is not one the script fills.

    Examples
    --------
    >>> find_maps("kprobe:f { @c[comm] = count(); }")["@c"].keys
    ('comm',)
    """
    code = mask(source)
    found: dict[str, MapInfo] = {}
    for match in re.finditer(r"@[A-Za-z_0-9]*", code):
        name, after = match.group(), match.end()
        keys: tuple[str, ...] = ()
        if bracket := re.match(r"\s*\[", code[after:]):
            opening = after + bracket.end() - 1
            closing = balanced(code, opening, "[", "]")
            if closing < 0:
                continue
            # Key text comes from the source: string literals in keys (@m["a,b", pid]) keep their contents.
            keys = tuple(split_top_level(source[opening + 1 : closing - 1]))
            after = closing
        assigned = _assignment(code, after)
        if assigned is None:
            continue
        function, call = assigned
        previous = found.get(name)
        if previous is not None and (previous.function != "value" or function == "value"):
            continue
        lhist = _lhist_parameters(source, code, call) if function == "lhist" else None
        line = previous.line if previous else source.count("\n", 0, match.start()) + 1
        found[name] = MapInfo(name, function, keys, lhist, line)
    return found


def _assignment(code: str, at: int) -> tuple[str, int] | None:
    """If the map just before ``code[at]`` is assigned there: its filler and where the filler's ``(`` is."""
    rest = code[at:]
    if rest.lstrip().startswith(("++", "--")):
        return "value", -1
    operator = re.match(r"\s*(?:[-+*/%&|^]|<<|>>)?=(?!=)\s*", rest)
    if operator is None:
        return None
    call = re.match(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", rest[operator.end() :])
    if call and call[1] in AGGREGATES and operator[0].strip() == "=":
        return call[1], at + operator.end() + call.end() - 1
    return "value", -1


def _lhist_parameters(source: str, code: str, opening: int) -> tuple[int, int, int] | None:
    """``(min, max, step)`` of the ``lhist(`` call opening at ``opening``, when all three are literals."""
    closing = balanced(code, opening, "(", ")")
    arguments = split_top_level(source[opening + 1 : closing - 1]) if closing > 0 else []
    if len(arguments) != 4:
        return None
    low, high, step = (int_literal(a) for a in arguments[1:])
    return None if low is None or high is None or step is None else (low, high, step)


def _expression_type(expression: str) -> str | None:
    """``"int"``, ``"str"`` or None: the type of a key expression, where its text tells."""
    text = expression.strip()
    while text.startswith("(") and balanced(text, 0, "(", ")") == len(text):
        text = text[1:-1].strip()
    if re.match(r"\(\s*u?int(?:8|16|32|64)\s*\)", text) or int_literal(text) is not None or text in _INT_BUILTINS:
        return "int"
    if text.startswith('"') or text in _STR_BUILTINS:
        return "str"
    call = re.match(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(", text)
    if call and call[1] in _STR_FUNCTIONS and balanced(text, call.end() - 1, "(", ")") == len(text):
        return "str"
    return None


def _simple_name(expression: str) -> str | None:
    """A column name for a key expression simple enough to have one."""
    text = expression.strip()
    if call := re.fullmatch(r"(?:str|ksym|usym)\s*\((.*)\)", text, re.DOTALL):
        text = split_top_level(call[1])[0] if call[1].strip() else ""
    text = text.lstrip("$")
    if field := re.fullmatch(r"args\s*(?:->|\.)\s*([A-Za-z_][A-Za-z_0-9]*)", text):
        return field[1]
    return text if _IDENT.fullmatch(text) else None


def key_column_names(keys: tuple[str, ...], taken: tuple[str, ...] = ()) -> list[str]:
    """Column names for the parts of a map's key.

    A simple expression names its column (``comm``, ``pid``, ``$fd`` -> ``fd``,
    ``args->filename`` and ``str(args->filename)`` -> ``filename``); any other
    is ``key`` (one part) or ``key0``, ``key1``... A name used twice, or one
    of ``taken`` (the value columns), gets a numeric suffix.
    """
    names: list[str] = []
    used = set(taken)
    for i, expression in enumerate(keys):
        name = _simple_name(expression) or ("key" if len(keys) == 1 else f"key{i}")
        base, n = name, 1
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names.append(name)
    return names
