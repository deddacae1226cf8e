"""A libbpf (CO-RE) cell compiled by clang, loaded and attached by libbpf: the engine's :class:`LoadedProgram`.

Programs attach by their ``SEC()`` names, as libbpf attaches them; explicit
hooks (``--tracepoint``, ``--uprobe``, ``--xdp``...) attach the programs they
name instead. Kernel types come from the running kernel's BTF (``vmlinux.h``
and CO-RE relocations), so struct reads are right on any kernel with BTF.
Loading is all-or-nothing: any failure closes the whole object.
"""

from __future__ import annotations

import ctypes
import functools
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from ...decode.btf import Btf, Kind
from ...decode.btf_types import ctype_of, enum_columns
from ...errors import ArgumentError, AttachError, CompileError, DecodeError, Interrupted
from ...kernel.constants import PERF_ATTR_FREQ, PROG_TYPES
from ...kernel.libbpf import num_possible_cpus
from ...kernel.perf import PerfEventAttr, online_cpus, perf_event_open
from ..base import LoadOptions, MapSpec
from ..diagnostics import cell_diagnostics, undeclared_function
from ..hooks import CGROUP_HOOKS, SECTION, Probe, cgroup_hook_named, perf_event_type, require_target
from ..interrupts import deferred_interrupts
from ..links import Attachment, attach_cgroup, attach_netns, attach_socket_filter, attach_sockmap, attach_xdp
from .bindings import BpfUprobeOpts, libbpf
from .compiler import compile_object
from .loader import LibbpfObject

__all__ = ["INTERNAL_PREFIX", "LibbpfProgram"]

#: Maps whose names start with this belong to bpfnb and are not listed.
INTERNAL_PREFIX = "_bpfnb"
#: A C header put before cells that use ring buffers: counts failed outputs in a map of bpfnb's.
PRELUDE = Path(__file__).with_name("prelude.h")
_LOST_MAP = "_bpfnb_ringbuf_lost"

# Sections that name no target: their programs attach only where an option says.
_UNTARGETED = re.compile(r"^(?:xdp|tc|classifier|action|socket|kprobe|kretprobe|uprobe|uretprobe|tracepoint|tp|"
                         r"raw_tracepoint|raw_tp|perf_event|sk_skb|sk_msg|sk_lookup|cgroup_skb|cgroup)(?:\.\w+)?$")


# Hooks bpfnb attaches from the program's fd (engines/links.py) rather than through libbpf.
_LINKED_BY_BPFNB = frozenset({"xdp", "socket_filter", "cgroup", "sk_msg", "sk_skb", "sk_lookup"})
_CGROUP_PROGRAM_TYPES = frozenset(program for program, _attach in CGROUP_HOOKS.values())


def _fits(probe: Probe, prog_type: int) -> bool:
    """Whether a program of ``prog_type`` can attach to ``probe``'s kind of hook."""
    if probe.kind == "cgroup":
        return any(PROG_TYPES[program] == prog_type for program in _CGROUP_PROGRAM_TYPES)
    return probe.program_type == prog_type


class LibbpfProgram:
    """The libbpf engine's loaded program; see :class:`bpfnb.engines.base.LoadedProgram`."""

    engine = "libbpf"

    def __init__(self, source: str, options: LoadOptions) -> None:
        from ...kernel.environment import preflight

        preflight(needs_tracefs=False, needs_bcc=False)
        self.source = source
        self.first_line = options.first_line
        self._cflags = (*options.cflags, *_prelude_flags(source))
        compiled = compile_object(source, cflags=self._cflags, first_line=options.first_line)
        warned = "\n".join(d.text for d in compiled.warnings)
        # libbpf would look for an undeclared function as an extern and say only ENOENT.
        undeclared = undeclared_function(warned)
        if undeclared is not None:
            raise undeclared
        self.warnings = cell_diagnostics(warned)
        self.log = self.warnings
        self.cached = compiled.cached
        self._attachments: list[Attachment] = []
        self._probes: list[Probe] = []
        with deferred_interrupts() as interrupted:
            self._object = LibbpfObject.open(compiled.data, _object_name(options.name))
            try:
                self._start(options.probes, options.attach)
            except BaseException:
                self.release()
                raise
        if interrupted:
            self.release()
            raise Interrupted("loading and attaching")

    def _start(self, probes: Sequence[Probe], attach_them: bool) -> None:
        resolved = self._resolve(probes)
        for function in {p.function_name for p in resolved}:
            self._object.set_autoattach(function, False)
        self._object.load()
        self.log = "".join(m.text for m in self._object.messages if m.level != "debug") + self.warnings
        if not attach_them:
            return
        for name in self._object.attach_all():
            self._probes.append(Probe(SECTION, self._object.programs[name].section, name))
        for probe in resolved:
            self._attach(probe)

    def _resolve(self, probes: Sequence[Probe]) -> list[Probe]:
        """Explicit probes with their functions and hook types filled in.

        A probe without a function takes the one program without a target of
        its type; ``--cgroup PATH`` alone takes every cgroup program.
        """
        programs = self._object.programs
        resolved = []
        for probe in probes:
            if probe.function is None and probe.kind == "cgroup" and probe.option("type") is None:
                cgroup_programs = [name for name, p in programs.items() if p.type_name in _CGROUP_PROGRAM_TYPES]
                if not cgroup_programs:
                    raise AttachError(
                        f"--cgroup {probe.target}: the cell has no cgroup program to attach.",
                        hint='give one a cgroup section, such as SEC("cgroup/connect4") or SEC("cgroup_skb/egress")',
                    )
                resolved += [self._typed(probe.with_function(name)) for name in cgroup_programs]
                continue
            if probe.function is None:
                untargeted = [
                    name for name, p in programs.items() if _UNTARGETED.match(p.section) and _fits(probe, p.prog_type)
                ]
                if len(untargeted) != 1:
                    raise AttachError(
                        f"which program should attach to {probe.kind} {probe.target}? "
                        f"Write {probe.target}=FUNCTION (programs without a target: {', '.join(untargeted) or 'none'})."
                    )
                probe = probe.with_function(untargeted[0])
            elif probe.function not in programs:
                raise AttachError(
                    f"the cell has no program {probe.function!r} to attach to {probe.kind} {probe.target}.",
                    hint=f"Its programs are: {', '.join(programs) or 'none'}.",
                )
            resolved.append(self._typed(probe))
        return resolved

    def _typed(self, probe: Probe) -> Probe:
        """``probe`` checked against its program's SEC(), with a cgroup hook's type taken from it."""
        program = self._object.programs[probe.function_name]
        if not _fits(probe, program.prog_type):
            raise AttachError(
                f'{program.name} is a {program.type_name} program (SEC("{program.section}")): '
                f"it cannot attach as {probe.kind} {probe.target}."
            )
        if probe.kind != "cgroup":
            return probe
        named = cgroup_hook_named(program.prog_type, program.attach_type)
        wanted = probe.option("type")
        if wanted is None:
            if named is None:
                raise AttachError(
                    f'--cgroup {probe.target}: SEC("{program.section}") does not say which hook of the cgroup.',
                    hint=f"write {probe.target}={program.name},type=T (types: {', '.join(CGROUP_HOOKS)})",
                )
            return probe.with_option("type", named)
        # cgroup_skb programs attach both ways whatever their section; others only as loaded.
        if named not in (wanted, None) and program.type_name != "cgroup_skb":
            raise AttachError(
                f'{program.name} was loaded for the cgroup hook {named} (SEC("{program.section}")), not {wanted}.',
                hint=f'drop type=, or write SEC("cgroup/{wanted}")',
            )
        return probe

    def _attach(self, probe: Probe) -> None:
        require_target(probe)
        function = probe.function_name
        fd = self._object.program_fd(function) if probe.kind in _LINKED_BY_BPFNB else -1
        if probe.kind == "xdp":
            self._attachments.append(attach_xdp(fd, probe))
        elif probe.kind == "socket_filter":
            self._attachments.append(attach_socket_filter(fd, probe))
        elif probe.kind == "cgroup":
            attach_type = probe.attach_type
            assert attach_type is not None, "_typed() gave every cgroup probe its type"
            self._attachments.append(attach_cgroup(fd, probe, attach_type))
        elif probe.kind in ("sk_msg", "sk_skb"):
            sockmap = self._object.maps.get(probe.target)
            if sockmap is None:
                raise AttachError(f"the cell has no map {probe.target!r} to attach {function} to.")
            self._attachments.append(attach_sockmap(fd, probe, sockmap.fd))
        elif probe.kind == "sk_lookup":
            self._attachments.append(attach_netns(fd, probe))
        elif probe.kind == "perf_event":
            self._attach_perf_event(probe)
        else:
            self._object.attach_with(function, _LINKERS[probe.kind](probe), key=f"{function}@{probe}")
        self._probes.append(probe)

    def _attach_perf_event(self, probe: Probe) -> None:
        ev_type, config = perf_event_type(probe.target)
        period = probe.int_option("period", 0)
        freq = probe.int_option("freq", 0) or (0 if period else 99)
        cpu = probe.int_option("cpu", -1)
        for each in [cpu] if cpu >= 0 else online_cpus():
            attr = PerfEventAttr(
                type=ev_type, config=config, sample_period=freq or period, flags=PERF_ATTR_FREQ if freq else 0
            )
            fd = perf_event_open(attr, pid=probe.int_option("pid", -1), cpu=each)
            # The link owns the perf event from here on: libbpf closes it with the link.
            self._object.attach_with(
                probe.function_name,
                functools.partial(_attach_perf_event, perf_fd=fd),
                key=f"{probe.function_name}@{probe}#{each}",
            )

    # -- what it holds ------------------------------------------------------------

    @property
    def functions(self) -> list[str]:
        return list(self._object.programs)

    @property
    def attachments(self) -> list[Probe]:
        return [] if self._object.closed else list(self._probes)

    @property
    def sockets(self) -> dict[str, int]:
        return {a.probe.function_name: a.socket_fd for a in self._attachments if a.socket_fd is not None}

    def loaded_functions(self) -> dict[str, list[str]]:
        return {name: [p.section] for name, p in self._object.programs.items() if p.fd >= 0}

    def map_names(self) -> list[str]:
        return [name for name in self._object.maps if not name.startswith(INTERNAL_PREFIX)]

    def map_spec(self, name: str) -> MapSpec:
        if name not in self.map_names():
            raise KeyError(name)
        info = self._object.maps[name]
        return MapSpec(
            name=name,
            type_id=info.map_type,
            fd=info.fd,
            key_type=info.key_type if info.key_size else None,
            value_type=info.value_type if info.value_size else None,
            max_entries=info.max_entries,
            key_size=info.key_size,
            value_size=info.value_size,
            map_flags=info.map_flags,
            enums=enum_columns(info.key_type) | enum_columns(info.value_type),
        )

    def function_fd(self, function: str) -> int | None:
        program = self._object.programs.get(function)
        return None if program is None or program.fd < 0 else program.fd

    def program_type(self, function: str) -> str | None:
        program = self._object.programs.get(function)
        return None if program is None else program.type_name

    def load_function(self, function: str, prog_type: str) -> int:
        program = self._object.programs.get(function)
        if program is None:
            raise ArgumentError(f"the cell has no program {function!r} (its programs: {', '.join(self.functions)})")
        if program.prog_type != PROG_TYPES[prog_type]:
            raise ArgumentError(
                f'{function} is a {program.type_name} program (SEC("{program.section}")), not {prog_type}',
                hint=f"run it as {program.type_name}, or give it a section of that type",
            )
        return program.fd

    def event_type(self, buffer: str, type_name: str | None = None) -> type:
        name = type_name or _event_type_name(self.source, buffer)
        if name is None:
            raise DecodeError(
                f"cannot tell which C type the program sends to {buffer!r}",
                hint='name it: prog.stream(name, type="struct event")',
            )
        if _find_named(self._object.btf, name) is None:
            # clang writes BTF only for the types of maps, globals and function
            # signatures: an event struct used only through local variables (the
            # usual reserve/submit code) is not in the object. The same cell with
            # one global of that type, compiled only to read its layout, has it.
            anchored = f"{self.source}\n{name} *{INTERNAL_PREFIX}_event_type_anchor;\n"
            try:
                compiled = compile_object(anchored, cflags=self._cflags, first_line=self.first_line)
            except CompileError:
                raise _no_type(name) from None
            return _named_type(Btf.from_elf(compiled.data), name)
        return _named_type(self._object.btf, name)

    def loss_counter(self) -> tuple[int, int] | None:
        counter = self._object.maps.get(_LOST_MAP)
        return None if counter is None else (counter.fd, num_possible_cpus())

    def text_output(self) -> None:
        return None  # libbpf programs print through buffers, read as streams by name

    # -- lifecycle ------------------------------------------------------------------

    def release(self) -> None:
        for attachment in reversed(self._attachments):
            attachment.release()
        self._attachments.clear()
        self._object.close()


def _object_name(name: str) -> str:
    # libbpf names a cell's global-variable maps "<object>.bss": keep it short and plain.
    return re.sub(r"\W", "_", name)[:8] or "cell"


def _prelude_flags(source: str) -> list[str]:
    """Put bpfnb's ring-buffer loss counting before cells that use ring buffers with vmlinux.h."""
    if "ringbuf" in source and re.search(r'#\s*include\s*"vmlinux\.h"', source):
        return ["-include", str(PRELUDE)]
    return []


def _attach_perf_event(handle: int, *, perf_fd: int) -> int | None:
    link: int | None = libbpf().bpf_program__attach_perf_event(handle, perf_fd)
    return link


def _link_tracepoint(probe: Probe) -> Callable[[int], int | None]:
    category, _, event = probe.target.partition(":")
    return lambda handle: libbpf().bpf_program__attach_tracepoint(handle, category.encode(), event.encode())


def _link_raw_tracepoint(probe: Probe) -> Callable[[int], int | None]:
    return lambda handle: libbpf().bpf_program__attach_raw_tracepoint(handle, probe.target.encode())


def _link_kprobe(probe: Probe) -> Callable[[int], int | None]:
    retprobe = probe.kind == "kretprobe"
    return lambda handle: libbpf().bpf_program__attach_kprobe(handle, retprobe, probe.target.encode())


def _link_uprobe(probe: Probe) -> Callable[[int], int | None]:
    binary, _, symbol = probe.target.rpartition(":")
    path = _library_path(binary)
    opts = BpfUprobeOpts(sz=ctypes.sizeof(BpfUprobeOpts), retprobe=probe.kind == "uretprobe", func_name=symbol.encode())
    pid = probe.int_option("pid", -1)
    return lambda handle: libbpf().bpf_program__attach_uprobe_opts(handle, pid, path.encode(), 0, ctypes.byref(opts))


_LINKERS: dict[str, Callable[[Probe], Callable[[int], int | None]]] = {
    "tracepoint": _link_tracepoint,
    "raw_tracepoint": _link_raw_tracepoint,
    "kprobe": _link_kprobe,
    "kretprobe": _link_kprobe,
    "uprobe": _link_uprobe,
    "uretprobe": _link_uprobe,
}


def _library_path(binary: str) -> str:
    """A path for ``binary``: as given, or a library name such as ``c`` found the way the loader finds it."""
    import ctypes.util
    import shutil

    if "/" in binary:
        return binary
    found = ctypes.util.find_library(binary)
    if found:
        for directory in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
            candidate = Path(directory, found)
            if candidate.exists():
                return str(candidate)
    program = shutil.which(binary)
    if program:
        return program
    raise AttachError(f"no program or library {binary!r} found for a uprobe", hint="give its full path")


# Where cells say which type they send to a buffer: reserve(&rb, sizeof(T)),
# output(&rb, &var, ...) and perf_event_output(ctx, &rb, flags, &var, ...).
_RESERVE = r"bpf_ringbuf_reserve\s*\(\s*&\s*{name}\s*,\s*sizeof\s*\(\s*(?P<expr>[^)]+?)\s*\)"
_OUTPUT = r"bpf_ringbuf_output\s*\(\s*&\s*{name}\s*,\s*&?\s*(?P<expr>\w+)"
_PERF_OUTPUT = r"bpf_perf_event_output\s*\(\s*\w+\s*,\s*&\s*{name}\s*,\s*[^,]+,\s*&?\s*(?P<expr>\w+)"


def _event_type_name(source: str, buffer: str) -> str | None:
    """The C type a cell sends to ``buffer``, read from its reserve/output calls."""
    for pattern in (_RESERVE, _OUTPUT, _PERF_OUTPUT):
        found = re.search(pattern.format(name=re.escape(buffer)), source)
        if found is None:
            continue
        expr = found["expr"].strip()
        if expr.startswith(("struct ", "union ")) or re.fullmatch(r"\w+_t", expr):
            return expr
        variable = expr.lstrip("*").strip()
        declared = re.search(rf"((?:struct|union)\s+\w+|\w+)\s*\*?\s*\b{re.escape(variable)}\s*[;=\[]", source)
        if declared:
            return declared[1]
    return None


def _find_named(btf: Btf, name: str) -> int | None:
    """The BTF id of ``struct x``, ``union x`` or typedef ``x``, if ``btf`` has it."""
    keyword, _, bare = name.strip().rpartition(" ")
    kinds = {"struct": Kind.STRUCT, "union": Kind.UNION, "": Kind.TYPEDEF}
    found = btf.find(bare, kinds.get(keyword, Kind.STRUCT))
    return found[0] if found else None


def _no_type(name: str) -> DecodeError:
    return DecodeError(f"the program's BTF has no type {name!r}", hint="name a struct the cell declares and uses")


def _named_type(btf: Btf, name: str) -> type:
    """The ctypes type of ``struct x``, ``union x`` or typedef ``x`` in ``btf``."""
    type_id = _find_named(btf, name)
    if type_id is None:
        raise _no_type(name)
    return ctype_of(btf, type_id)
