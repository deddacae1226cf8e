"""What can be probed, read from tracefs and ELF files: tracepoints and their fields, kprobe targets, uprobe symbols.

tracefs is looked for in one place, :func:`tracefs_root`, which raises a
:class:`SetupError` saying how to mount it when it is missing.
"""

from __future__ import annotations

import functools
import glob
import os
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase

from ..display.html import card, note, table
from ..errors import ArgumentError, PrivilegeError, SetupError, did_you_mean
from .environment import tracefs_dir

__all__ = [
    "Tracepoint",
    "TracepointField",
    "has_kprobes",
    "has_raw_tracepoint",
    "has_tracepoint",
    "kprobe_functions",
    "resolve_binary",
    "similar_tracepoints",
    "tracefs_root",
    "tracepoint",
    "tracepoints",
    "uprobe_symbols",
]

_FIELD = re.compile(r"field:(?P<decl>.+?);\s*offset:(?P<offset>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<signed>\d+);")


def tracefs_root() -> str:
    """Where tracefs is mounted; :class:`SetupError` if it is not."""
    root = tracefs_dir()
    if root is not None:
        return root
    raise SetupError(
        "tracefs is not mounted",
        hint="As root: `mount -t tracefs none /sys/kernel/tracing`.",
    )


def has_tracepoint(category: str, event: str) -> bool:
    """Whether tracepoint ``category:event`` exists on this kernel (with ``event`` empty: the category)."""
    return os.path.isdir(os.path.join(tracefs_root(), "events", category, event))


def has_raw_tracepoint(name: str) -> bool:
    """Whether a raw tracepoint ``name`` exists (raw tracepoints are tracepoints without their category)."""
    return bool(glob.glob(os.path.join(glob.escape(tracefs_root()), "events", "*", glob.escape(name))))


def has_kprobes() -> bool:
    """Whether this kernel has kprobes (``CONFIG_KPROBES``): tracefs then offers ``kprobe_events``."""
    return os.path.exists(os.path.join(tracefs_root(), "kprobe_events"))


def _read(path: str, what: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except PermissionError as exc:
        raise PrivilegeError(f"cannot read {what} ({path}): {exc.strerror}") from exc


@functools.lru_cache(maxsize=1)
def _all_tracepoints(root: str) -> tuple[str, ...]:
    return tuple(sorted(_read(os.path.join(root, "available_events"), "the list of tracepoints").split()))


def _strip_kind(pattern: str, *kinds: str) -> str:
    for kind in kinds:
        if pattern.startswith(kind + ":"):
            return pattern[len(kind) + 1 :]
    return pattern


def tracepoints(pattern: str = "*") -> list[str]:
    """Tracepoint names (``category:name``) matching a glob: ``"sched:*"``, ``"sys_enter_open*"``.

    A pattern without a colon also matches the name after the category.
    """
    pattern = _strip_kind(pattern, "tracepoint", "t")
    return [
        name
        for name in _all_tracepoints(tracefs_root())
        if fnmatchcase(name, pattern) or (":" not in pattern and fnmatchcase(name.partition(":")[2], pattern))
    ]


def similar_tracepoints(name: str) -> list[str]:
    """The tracepoints a misspelled ``name`` (``category:event``, or an event alone) may have meant.

    Every tracepoint of the category when the category exists (the event is
    the misspelled part), else every tracepoint: :func:`bpfnb.errors.did_you_mean`
    picks the nearest. Empty when tracefs cannot be read.
    """
    try:
        every = _all_tracepoints(tracefs_root())
    except (SetupError, PrivilegeError):
        return []
    category, colon, _ = name.rpartition(":")
    same_category = [t for t in every if t.startswith(category + ":")] if colon else []
    return same_category or list(every)


@dataclass(frozen=True)
class TracepointField:
    """One field of a tracepoint's record, as its tracefs ``format`` file declares it."""

    decl: str
    name: str
    type: str
    offset: int
    size: int
    signed: bool

    @classmethod
    def parse(cls, line: str) -> TracepointField | None:
        """The field a ``format`` line declares, or None for other lines."""
        match = _FIELD.search(line)
        if match is None:
            return None
        decl = match["decl"].strip()
        name = re.search(r"(\w+)\s*(\[[^\]]*\])?$", decl)
        if name is None:
            return None
        ctype = (decl[: name.start()].strip() + (name.group(2) or "")).strip()
        return cls(decl, name.group(1), ctype, int(match["offset"]), int(match["size"]), match["signed"] == "1")


@dataclass(frozen=True)
class Tracepoint:
    """A tracepoint with its argument fields (the ``common_*`` header fields apart)."""

    name: str
    id: int
    fields: tuple[TracepointField, ...]
    common_fields: tuple[TracepointField, ...]
    print_fmt: str

    def __repr__(self) -> str:
        lines = [f"tracepoint:{self.name}"]
        lines += [f"    {f.decl}" for f in self.fields]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = [(f.type, f.name, f.offset, f.size, "yes" if f.signed else "no") for f in self.fields]
        return card(
            f"tracepoint:{self.name} (id {self.id})",
            table(["type", "field (args->…)", "offset", "size", "signed"], rows),
            note(f"In C: TRACEPOINT_PROBE({self.name.replace(':', ', ')}) {{ … args->field … }}"),
        )


def tracepoint(name: str) -> Tracepoint:
    """One tracepoint's fields, parsed from ``events/<category>/<name>/format``."""
    name = _strip_kind(name, "tracepoint", "t")
    category, _, event = name.partition(":")
    path = os.path.join(tracefs_root(), "events", category, event, "format")
    if not event or not os.path.exists(path):
        raise ArgumentError(
            did_you_mean(f"no tracepoint {name!r}", name, similar_tracepoints(name)),
            hint=f"List them with probes('{category or '*'}:*').",
        )
    text = _read(path, f"the format of {name}")
    parsed = [TracepointField.parse(line) for line in text.splitlines()]
    fields = tuple(f for f in parsed if f is not None)
    ident = re.search(r"^ID:\s*(\d+)", text, re.M)
    fmt = re.search(r"^print fmt:\s*(.*)$", text, re.M)
    return Tracepoint(
        name=name,
        id=int(ident.group(1)) if ident else -1,
        fields=tuple(f for f in fields if not f.name.startswith("common_")),
        common_fields=tuple(f for f in fields if f.name.startswith("common_")),
        print_fmt=fmt.group(1) if fmt else "",
    )


def kprobe_functions(pattern: str = "*") -> list[str]:
    """Kernel functions kprobes may attach to (``available_filter_functions``), matching a glob.

    Raises
    ------
    PrivilegeError
        If the kernel does not let this process read the list (lockdown makes
        it EPERM even for root).
    """
    pattern = _strip_kind(pattern, "kprobe", "kretprobe", "k", "kr")
    path = os.path.join(tracefs_root(), "available_filter_functions")
    try:
        with open(path) as f:
            names = {line.split()[0] for line in f if line.strip()}
    except OSError as exc:
        raise PrivilegeError(
            f"the kernel does not list its kprobe targets here ({path}: {exc.strerror})",
            hint="Kernel lockdown forbids reading it; tracepoints (probes('*:*')) are listed.",
        ) from exc
    return sorted(name for name in names if fnmatchcase(name, pattern))


def uprobe_symbols(binary: str, pattern: str = "*") -> list[tuple[str, int]]:
    """Function symbols of ``binary`` (a path, a program on ``$PATH`` or a library name like ``"c"``).

    Returns ``(name, address)`` pairs from the ELF symbol tables, found with
    BCC's symbol reader, for ``uprobe:<binary>:<name>``.
    """
    from bcc import BPF

    path = resolve_binary(binary)
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    found = BPF.get_user_functions_and_addresses(path.encode(), regex.encode())
    # .symtab and .dynsym both list exported functions: keep one of each name.
    first: dict[str, int] = {}
    for name, address in found:
        first.setdefault(name.decode(), int(address))
    return sorted(first.items())


def resolve_binary(binary: str) -> str:
    """The file a uprobe target names: a path, a program on ``$PATH`` or a library name such as ``c``."""
    from bcc import BPF

    if os.path.isfile(binary):
        return binary
    if "/" not in binary:
        found = BPF.find_library(binary.encode()) or BPF.find_exe(binary.encode())
        path = found.decode() if isinstance(found, bytes) else found
        if path and os.path.isfile(path):
            return path
    raise ArgumentError(
        f"no program or library {binary!r} found",
        hint="give a path, a program on $PATH or a library name such as c (libc)",
    )
