"""Open, load, attach and close a compiled BPF object through libbpf.

:class:`LibbpfObject` owns one ``struct bpf_object`` and the links of its
attached programs. Every libbpf call it makes runs inside a capture of
libbpf's messages, which become the errors' words. :meth:`LibbpfObject.close`
(also run when the object is garbage-collected or the interpreter exits)
destroys the links and closes the object, so nothing it created stays in
the kernel.
"""

from __future__ import annotations

import ctypes
import errno
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ...decode.btf import Btf
from ...decode.btf_types import ctype_of
from ...errors import BpfnbError, LoadError
from ...kernel.constants import MAP_TYPE_IDS
from .bindings import BPF_PROG_TYPE_UNSPEC, BpfObjectOpenOpts, errno_text, libbpf
from .explain import attach_error, load_error, unknown_section_error
from .messages import LibbpfMessage, capture_libbpf_output

__all__ = ["LibbpfObject", "MapInfo", "ProgramInfo"]

# Map types whose key is a u32 index, BTF or not (libbpf's .bss/.data maps have no key type).
_INDEXED_MAP_TYPES = frozenset(
    MAP_TYPE_IDS[name]
    for name in ("array", "prog_array", "perf_event_array", "percpu_array", "stack_trace", "cgroup_array")
)


@dataclass(frozen=True)
class ProgramInfo:
    """One program of an object.

    Attributes
    ----------
    name
        The C function's name.
    section
        Its ``SEC()`` name.
    prog_type
        ``BPF_PROG_TYPE_*`` number libbpf derived from the section (0: unknown section).
    type_name
        libbpf's name for that type (``"tracepoint"``, ``"tracing"``, ``"xdp"``).
    attach_type
        ``BPF_*`` attach type libbpf derived from the section (``cgroup/connect4``: inet4_connect).
    fd
        The program's file descriptor once loaded, else -1.
    attached
        Whether :meth:`LibbpfObject.attach_all` attached it.
    """

    name: str
    section: str
    prog_type: int
    type_name: str
    attach_type: int
    fd: int
    attached: bool


@dataclass(frozen=True)
class MapInfo:
    """One map of an object, with ctypes types for its keys and values.

    Attributes
    ----------
    name
        libbpf's name: the variable's name, or ``<object>.bss`` / ``.data`` /
        ``.rodata`` (object name cut so the whole fits 15 characters) for the
        maps libbpf makes to hold global variables.
    map_type, type_name
        ``BPF_MAP_TYPE_*`` number and libbpf's name for it (``"hash"``, ``"ringbuf"``).
    fd
        The map's file descriptor once loaded, else -1.
    key_size, value_size, max_entries, map_flags
        As created.
    key_type_id, value_type_id
        BTF ids in :attr:`LibbpfObject.btf` of the declared types (kept for the
        map types libbpf creates without BTF); 0 when the map has no BTF type.
    key_type, value_type
        ctypes types with the exact C layout (from BTF), raw ``c_uint8 * size``
        when the map has no BTF type, None for a zero size (ring buffers).
        A global-variable map's value type is a struct of its variables; keys
        of array-like maps without a BTF key type are ``c_uint32`` indices.
    internal
        True for the maps libbpf makes for global variables.
    """

    name: str
    map_type: int
    type_name: str
    fd: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    key_type_id: int
    value_type_id: int
    key_type: type | None
    value_type: type | None
    internal: bool


class _Handles:
    """The C objects to free, kept apart from LibbpfObject so that a
    ``weakref.finalize`` can free them without keeping the object alive."""

    def __init__(self, obj: int) -> None:
        self.obj: int | None = obj
        self.links: dict[str, int] = {}
        self.lock = threading.RLock()

    def destroy_links(self) -> None:
        with self.lock:
            while self.links:
                _name, link = self.links.popitem()
                libbpf().bpf_link__destroy(link)

    def close(self) -> None:
        with self.lock:
            self.destroy_links()
            if self.obj is not None:
                libbpf().bpf_object__close(self.obj)
                self.obj = None


class LibbpfObject:
    """A BPF object opened by libbpf. Create with :meth:`open`.

    Use as a context manager, or call :meth:`close`; either way nothing stays
    in the kernel once it is closed.
    """

    def __init__(self, handles: _Handles, data: bytes, name: str, messages: list[LibbpfMessage]) -> None:
        self._handles = handles
        # libbpf copies what it needs while opening; holding the bytes costs
        # nothing and keeps that an implementation detail of libbpf.
        self._data = data
        self._name = name
        self._loaded = False
        #: Every message libbpf printed for this object (open, load, attach).
        self.messages = messages
        self._btf = self._read_btf()
        # libbpf creates some map types (stack traces, queues, perf event
        # arrays...) without BTF, and then reports type id 0 for them: keep
        # the types the object declared, as libbpf reports them before load.
        self._declared_type_ids: dict[str, tuple[int, int]] = {}
        self._declared_type_ids = {info.name: (info.key_type_id, info.value_type_id) for info in self.maps.values()}
        self._finalizer = weakref.finalize(self, handles.close)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def open(cls, data: bytes, name: str) -> LibbpfObject:
        """Parse an ELF object with ``bpf_object__open_mem``.

        Parameters
        ----------
        data
            The object's bytes (from :func:`compile_object`).
        name
            The object name. libbpf prefixes the global-variable maps with it
            (``name.bss``); keep it short.

        Returns
        -------
        LibbpfObject
            Opened, not loaded: nothing is in the kernel yet.

        Raises
        ------
        LoadError
            libbpf could not parse the object.
        """
        opts = BpfObjectOpenOpts(sz=ctypes.sizeof(BpfObjectOpenOpts), object_name=name.encode())
        with capture_libbpf_output() as messages:
            obj = libbpf().bpf_object__open_mem(data, len(data), ctypes.byref(opts))
            number = ctypes.get_errno()
        if not obj:
            words = "".join(m.text for m in messages if m.level != "debug").strip()
            raise LoadError(
                f"libbpf could not open the object: {errno_text(number)}",
                details=words,
                errno=number,
            )
        return cls(_Handles(obj), data, name, list(messages))

    def _object(self) -> int:
        obj = self._handles.obj
        if obj is None:
            raise BpfnbError(f"the BPF object {self._name!r} is closed")
        return obj

    def _read_btf(self) -> Btf:
        lib = libbpf()
        btf = lib.bpf_object__btf(self._object())
        if not btf:
            raise LoadError("the object has no BTF", hint="compile with -g (compile_object does)")
        size = ctypes.c_uint32()
        raw = lib.btf__raw_data(btf, ctypes.byref(size))
        # libbpf's copy, not the ELF section: it has the sizes and offsets of
        # .bss/.data/.rodata variables that libbpf filled in while opening.
        return Btf(ctypes.string_at(raw, size.value))

    def load(self) -> None:
        """Create the maps and load the programs into the kernel.

        Raises
        ------
        AttachError
            A program's SEC() is not one libbpf knows (the details list the
            valid ones), or names a kernel function or BTF tracepoint that
            does not exist.
        LoadError
            The verifier rejected a program (``line`` is the cell line it
            stopped at), a CO-RE relocation failed (the message names the
            struct and field this kernel lacks), or the kernel refused (``errno``).
        """
        with self._handles.lock:
            obj = self._object()
            lib = libbpf()
            for program, handle in self._program_handles():
                if program.prog_type == BPF_PROG_TYPE_UNSPEC and lib.bpf_program__autoload(handle):
                    raise unknown_section_error(program.name, program.section)
            with capture_libbpf_output() as messages:
                result = lib.bpf_object__load(obj)
            self.messages.extend(messages)
            if result < 0:
                sections = {p.name: (p.section, p.prog_type) for p in self._programs()}
                raise load_error(messages, -result, sections)
            self._loaded = True

    def attach_all(self) -> list[str]:
        """Attach every loaded program whose SEC() says where, all or nothing.

        Programs whose section has no automatic attach point (``SEC("xdp")``,
        ``SEC("tc")``, plain ``SEC("kprobe")`` ...) are left loaded and
        unattached: run them with ``BPF_PROG_TEST_RUN`` or attach them by hand.

        Returns
        -------
        list of str
            The names of the programs attached.

        Raises
        ------
        AttachError
            A program could not be attached; the links this call made are
            destroyed first, so no program of this object is left attached by it.
        """
        with self._handles.lock:
            if not self._loaded:
                raise BpfnbError("load() the object before attaching it")
            lib = libbpf()
            made: list[str] = []
            for program, handle in self._program_handles():
                if program.name in self._handles.links or not lib.bpf_program__autoload(handle):
                    continue
                if not lib.bpf_program__autoattach(handle):
                    continue
                with capture_libbpf_output() as messages:
                    link = lib.bpf_program__attach(handle)
                    number = ctypes.get_errno()
                self.messages.extend(messages)
                if link:
                    self._handles.links[program.name] = link
                    made.append(program.name)
                    continue
                if number == errno.EOPNOTSUPP:
                    continue
                for name in made:
                    lib.bpf_link__destroy(self._handles.links.pop(name))
                raise attach_error(program.name, program.section, number, messages)
            return made

    def attach_with(self, program: str, make: Callable[[int], int | None], *, key: str) -> None:
        """Attach ``program`` with ``make(handle)``, a libbpf call that returns a ``struct bpf_link *``.

        ``key`` names the link (a program may have several). On failure
        ``make`` returns NULL with errno set, and libbpf's words explain it.

        Raises
        ------
        AttachError
            libbpf could not attach the program.
        """
        with self._handles.lock:
            handle = self._program_handle(program)
            section = libbpf().bpf_program__section_name(handle).decode()
            with capture_libbpf_output() as messages:
                link = make(handle)
                number = ctypes.get_errno()
            self.messages.extend(messages)
            if not link:
                raise attach_error(program, section, number, messages)
            self._handles.links[key] = link

    def program_fd(self, program: str) -> int:
        """The fd of a loaded program (owned by the object)."""
        fd = int(libbpf().bpf_program__fd(self._program_handle(program)))
        if fd < 0:
            raise BpfnbError(f"program {program!r} is not loaded")
        return fd

    def detach_all(self) -> None:
        """Destroy every link; the programs stay loaded."""
        self._handles.destroy_links()

    def close(self) -> None:
        """Detach everything and free the object; safe to call more than once."""
        self._finalizer()
        self._loaded = False

    def __enter__(self) -> LibbpfObject:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ contents

    @property
    def name(self) -> str:
        """The object name given to :meth:`open`."""
        return self._name

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._handles.obj is None

    @property
    def btf(self) -> Btf:
        """The object's BTF as libbpf holds it (type ids match :class:`MapInfo`)."""
        return self._btf

    def _program_handles(self) -> Iterator[tuple[ProgramInfo, int]]:
        lib = libbpf()
        obj = self._object()
        handle = lib.bpf_object__next_program(obj, None)
        while handle:
            prog_type = lib.bpf_program__type(handle)
            type_name = lib.libbpf_bpf_prog_type_str(prog_type)
            name = lib.bpf_program__name(handle).decode()
            fd = lib.bpf_program__fd(handle) if self._loaded else -1
            info = ProgramInfo(
                name=name,
                section=lib.bpf_program__section_name(handle).decode(),
                prog_type=prog_type,
                type_name=type_name.decode() if type_name else str(prog_type),
                attach_type=lib.bpf_program__expected_attach_type(handle),
                fd=fd if fd >= 0 else -1,
                attached=name in self._handles.links,
            )
            yield info, handle
            handle = lib.bpf_object__next_program(obj, handle)

    def _programs(self) -> list[ProgramInfo]:
        return [info for info, _handle in self._program_handles()]

    @property
    def programs(self) -> dict[str, ProgramInfo]:
        """The object's programs by name, in the object's order."""
        return {p.name: p for p in self._programs()}

    @property
    def maps(self) -> dict[str, MapInfo]:
        """The object's maps by libbpf's name, with ctypes key and value types."""
        lib = libbpf()
        obj = self._object()
        found: dict[str, MapInfo] = {}
        handle = lib.bpf_object__next_map(obj, None)
        while handle:
            name = lib.bpf_map__name(handle).decode()
            declared_key_id, declared_value_id = self._declared_type_ids.get(name, (0, 0))
            key_id = lib.bpf_map__btf_key_type_id(handle) or declared_key_id
            value_id = lib.bpf_map__btf_value_type_id(handle) or declared_value_id
            key_size = lib.bpf_map__key_size(handle)
            value_size = lib.bpf_map__value_size(handle)
            map_type = lib.bpf_map__type(handle)
            type_name = lib.libbpf_bpf_map_type_str(map_type)
            fd = lib.bpf_map__fd(handle) if self._loaded else -1
            found[name] = MapInfo(
                name=name,
                map_type=map_type,
                type_name=type_name.decode() if type_name else str(map_type),
                fd=fd if fd >= 0 else -1,
                key_size=key_size,
                value_size=value_size,
                max_entries=lib.bpf_map__max_entries(handle),
                map_flags=lib.bpf_map__map_flags(handle),
                key_type_id=key_id,
                value_type_id=value_id,
                key_type=self._ctype(key_id, key_size, index=map_type in _INDEXED_MAP_TYPES),
                value_type=self._ctype(value_id, value_size),
                internal=lib.bpf_map__is_internal(handle),
            )
            handle = lib.bpf_object__next_map(obj, handle)
        return found

    def _program_handle(self, name: str) -> int:
        for program, handle in self._program_handles():
            if program.name == name:
                return handle
        raise KeyError(f"no program {name!r}; the object has {', '.join(self.programs) or 'none'}")

    def set_autoload(self, program: str, autoload: bool) -> None:
        """Choose whether :meth:`load` loads ``program``; only before :meth:`load`.

        Raises
        ------
        KeyError
            The object has no such program.
        BpfnbError
            The object is loaded already.
        """
        if libbpf().bpf_program__set_autoload(self._program_handle(program), autoload) < 0:
            raise BpfnbError(f"cannot change whether {program!r} loads once the object is loaded")

    def set_autoattach(self, program: str, autoattach: bool) -> None:
        """Choose whether :meth:`attach_all` attaches ``program`` (it stays loaded).

        Raises
        ------
        KeyError
            The object has no such program.
        """
        libbpf().bpf_program__set_autoattach(self._program_handle(program), autoattach)

    def set_initial_value(self, map_name: str, value: ctypes.Structure | ctypes.Array[Any]) -> None:
        """Set the contents a map is created with; only before :meth:`load`.

        The way to give ``const volatile`` globals (``<object>.rodata``) their
        values: the verifier then sees them as constants.

        Parameters
        ----------
        map_name
            A map of this object, usually ``<object>.rodata`` or ``.data``.
        value
            A ctypes instance of the map's value type (all of it).

        Raises
        ------
        KeyError
            The object has no such map.
        BpfnbError
            The object is loaded already, or the size is wrong.
        """
        lib = libbpf()
        obj = self._object()
        handle = lib.bpf_object__next_map(obj, None)
        while handle and lib.bpf_map__name(handle).decode() != map_name:
            handle = lib.bpf_object__next_map(obj, handle)
        if not handle:
            raise KeyError(f"no map {map_name!r}; the object has {', '.join(self.maps) or 'none'}")
        size = ctypes.sizeof(value)
        if lib.bpf_map__set_initial_value(handle, ctypes.byref(value), size) < 0:
            number = ctypes.get_errno()
            raise BpfnbError(
                f"cannot set the initial value of map {map_name!r} ({size} bytes): {errno_text(number)}",
                hint="only before load(), and with a value of the map's own value type",
            )

    def _ctype(self, type_id: int, size: int, *, index: bool = False) -> type | None:
        if type_id:
            return ctype_of(self._btf, type_id)
        if index and size == 4:
            return ctypes.c_uint32
        return ctypes.c_uint8 * size if size else None
