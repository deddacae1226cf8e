"""A pure-Python reader of BTF, the BPF Type Format.

Reads the raw BTF of a compiled object's ``.BTF`` ELF section, of
``btf__raw_data()`` from libbpf, or of ``/sys/kernel/btf/vmlinux``: the header,
the type section and the string section, every kind up to ENUM64. No root, no
libbpf. Type ids are positions in the type section, starting at 1 (0 is void).

Types are decoded on first use: a first pass only records where each type's
record starts, so that reading the kernel's 100k+ types stays cheap.

BTF-defined maps (``struct { __uint(type, ...); __type(key, ...); ... } name
SEC(".maps")``) are described by :func:`map_definitions`.
"""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DecodeError
from .elf import elf_sections

__all__ = [
    "Btf",
    "BtfType",
    "EnumValue",
    "Kind",
    "MapDefinition",
    "Member",
    "Param",
    "VarSecinfo",
    "map_definitions",
]

_MAGIC = 0xEB9F
_INT_SIGNED = 1 << 0
_INT_CHAR = 1 << 1
_INT_BOOL = 1 << 2


class Kind(enum.IntEnum):
    """BTF_KIND_* numbers."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


#: Kinds that only qualify or rename another type: skipped to reach a layout.
MODIFIERS = frozenset({Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})

# Bytes of the per-entry records that follow a type's 12-byte common header.
_VLEN_RECORD = {
    Kind.STRUCT: 12, Kind.UNION: 12, Kind.ENUM: 8, Kind.FUNC_PROTO: 8,
    Kind.DATASEC: 12, Kind.ENUM64: 12,
}  # fmt: skip
_FIXED_EXTRA = {Kind.INT: 4, Kind.ARRAY: 12, Kind.VAR: 4, Kind.DECL_TAG: 4}


@dataclass(frozen=True)
class Member:
    """A struct or union member.

    Attributes
    ----------
    name
        Empty for an anonymous struct or union member.
    type_id
        The member's type.
    bit_offset
        Offset from the start of the struct, in bits.
    bitfield_size
        Width in bits for a bit-field, else 0.
    """

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int


@dataclass(frozen=True)
class EnumValue:
    """An enumerator: its name and value."""

    name: str
    value: int


@dataclass(frozen=True)
class Param:
    """A function prototype's parameter (name may be empty)."""

    name: str
    type_id: int


@dataclass(frozen=True)
class VarSecinfo:
    """A variable placed in a DATASEC: its VAR type id, offset and size in bytes."""

    type_id: int
    offset: int
    size: int


@dataclass(frozen=True)
class BtfType:
    """One decoded BTF type.

    Attributes
    ----------
    id
        The type id.
    kind
        Its :class:`Kind`.
    name
        Its name; empty for anonymous types.
    size
        Bytes, for INT, STRUCT, UNION, ENUM, ENUM64, DATASEC and FLOAT; else 0.
    type_id
        The referenced type for PTR, TYPEDEF, modifiers, FUNC, VAR, DECL_TAG and
        TYPE_TAG, the return type for FUNC_PROTO; else 0.
    kind_flag
        The info word's kind flag (bit-field offsets in STRUCT/UNION, signed
        ENUM/ENUM64, union FWD, attribute DECL_TAG).
    int_encoding, int_offset, int_bits
        For INT: ``BTF_INT_SIGNED|CHAR|BOOL`` bits, bit offset and width.
    array
        For ARRAY: ``(element type id, index type id, element count)``.
    members
        For STRUCT and UNION.
    values
        For ENUM and ENUM64.
    params
        For FUNC_PROTO.
    linkage
        For FUNC (its vlen) and VAR.
    secinfos
        For DATASEC.
    component_idx
        For DECL_TAG: -1 for the type itself, else the member or parameter index.
    """

    id: int
    kind: Kind
    name: str
    size: int = 0
    type_id: int = 0
    kind_flag: bool = False
    int_encoding: int = 0
    int_offset: int = 0
    int_bits: int = 0
    array: tuple[int, int, int] = (0, 0, 0)
    members: tuple[Member, ...] = ()
    values: tuple[EnumValue, ...] = ()
    params: tuple[Param, ...] = ()
    linkage: int = 0
    secinfos: tuple[VarSecinfo, ...] = ()
    component_idx: int = -1

    @property
    def is_signed(self) -> bool:
        """For INT: the SIGNED encoding bit; for ENUM/ENUM64: the kind flag."""
        if self.kind == Kind.INT:
            return bool(self.int_encoding & _INT_SIGNED)
        return self.kind_flag

    @property
    def is_char(self) -> bool:
        """For INT: plain ``char`` (one byte, the CHAR bit or the name ``char``)."""
        return self.kind == Kind.INT and self.size == 1 and (
            bool(self.int_encoding & _INT_CHAR) or self.name == "char"
        )

    @property
    def is_bool(self) -> bool:
        """For INT: ``_Bool``."""
        return self.kind == Kind.INT and bool(self.int_encoding & _INT_BOOL)


@dataclass(frozen=True)
class MapDefinition:
    """A BTF-defined map, as declared in the object's ``.maps`` section.

    Attributes
    ----------
    name
        The map variable's name.
    attributes
        Every ``__uint(name, N)`` attribute (``type``, ``max_entries``,
        ``map_flags``, ``key_size``, ...).
    key_type_id, value_type_id
        The ``__type(key, T)`` / ``__type(value, T)`` type ids, or None.
    """

    name: str
    attributes: dict[str, int] = field(default_factory=dict)
    key_type_id: int | None = None
    value_type_id: int | None = None

    @property
    def map_type(self) -> int | None:
        """The ``BPF_MAP_TYPE_*`` number."""
        return self.attributes.get("type")

    @property
    def max_entries(self) -> int | None:
        """``max_entries``, if declared."""
        return self.attributes.get("max_entries")


class Btf:
    """Raw BTF, parsed.

    Parameters
    ----------
    data
        The raw BTF bytes (a ``.BTF`` section or a ``/sys/kernel/btf`` file).

    Raises
    ------
    DecodeError
        The bytes are not BTF or are truncated.
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise DecodeError("BTF is shorter than its header")
        for order in "<>":
            if struct.unpack_from(order + "H", data)[0] == _MAGIC:
                break
        else:
            raise DecodeError("not BTF: the magic number 0xeB9F is missing")
        self._order = order
        _magic, version, _flags, hdr_len = struct.unpack_from(order + "HBBI", data)
        if version != 1:
            raise DecodeError(f"unsupported BTF version {version}")
        type_off, type_len, str_off, str_len = struct.unpack_from(order + "IIII", data, 8)
        types_start = hdr_len + type_off
        strings_start = hdr_len + str_off
        if types_start + type_len > len(data) or strings_start + str_len > len(data):
            raise DecodeError("BTF sections run past the end of the data")
        self._data = bytes(data)
        self._types_end = types_start + type_len
        self._strings = self._data[strings_start:strings_start + str_len]
        self._offsets = self._index(types_start)
        self._decoded: dict[int, BtfType] = {}

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_elf(cls, image: bytes) -> Btf:
        """The BTF of a compiled object (its ``.BTF`` section).

        Parameters
        ----------
        image
            The ELF object's bytes.

        Returns
        -------
        Btf
        """
        sections = elf_sections(image)
        if ".BTF" not in sections:
            raise DecodeError("the object has no .BTF section (was it compiled with -g?)")
        return cls(sections[".BTF"])

    @classmethod
    def from_file(cls, path: str | Path) -> Btf:
        """BTF from a file: raw BTF (``/sys/kernel/btf/vmlinux``) or an ELF object.

        Parameters
        ----------
        path
            The file.

        Returns
        -------
        Btf
        """
        data = Path(path).read_bytes()
        return cls.from_elf(data) if data[:4] == b"\x7fELF" else cls(data)

    def _index(self, start: int) -> list[int]:
        # offsets[i] is where type i's record starts; type 0 (void) has none.
        offsets = [0]
        header = struct.Struct(self._order + "III")
        position, end = start, self._types_end
        while position < end:
            offsets.append(position)
            _name, info, _size = header.unpack_from(self._data, position)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if kind > max(Kind):
                raise DecodeError(f"unknown BTF kind {kind} for type {len(offsets) - 1}")
            position += 12 + _FIXED_EXTRA.get(kind, 0) + vlen * _VLEN_RECORD.get(kind, 0)
        if position != end:
            raise DecodeError("the BTF type section is truncated")
        return offsets

    # ------------------------------------------------------------------ access

    def __len__(self) -> int:
        """The number of type ids, counting void (id 0)."""
        return len(self._offsets)

    @property
    def byteorder(self) -> str:
        """``"little"`` or ``"big"``: the byte order the BTF was written in."""
        return "little" if self._order == "<" else "big"

    def string(self, offset: int) -> str:
        """The string at ``offset`` in the string section."""
        end = self._strings.index(b"\0", offset)
        return self._strings[offset:end].decode(errors="replace")

    def type(self, type_id: int) -> BtfType:
        """The decoded type with id ``type_id``.

        Parameters
        ----------
        type_id
            0 (void) up to ``len(self) - 1``.

        Returns
        -------
        BtfType
        """
        try:
            return self._decoded[type_id]
        except KeyError:
            decoded = self._decoded[type_id] = self._decode(type_id)
            return decoded

    def _decode(self, type_id: int) -> BtfType:
        if type_id == 0:
            return BtfType(0, Kind.VOID, "void")
        if not 0 < type_id < len(self._offsets):
            raise DecodeError(f"no BTF type with id {type_id} (there are {len(self) - 1})")
        order, data = self._order, self._data
        position = self._offsets[type_id]
        name_off, info, size_or_type = struct.unpack_from(order + "III", data, position)
        kind = Kind((info >> 24) & 0x1F)
        vlen, kind_flag = info & 0xFFFF, bool(info >> 31)
        name = self.string(name_off)
        body = position + 12
        new = functools.partial(BtfType, type_id, kind, name, kind_flag=kind_flag)
        if kind == Kind.INT:
            (word,) = struct.unpack_from(order + "I", data, body)
            return new(
                size=size_or_type, int_encoding=(word >> 24) & 0x0F,
                int_offset=(word >> 16) & 0xFF, int_bits=word & 0xFF,
            )  # fmt: skip
        if kind == Kind.ARRAY:
            return new(array=struct.unpack_from(order + "III", data, body))
        if kind in (Kind.STRUCT, Kind.UNION):
            members = []
            for i in range(vlen):
                m_name, m_type, m_offset = struct.unpack_from(order + "III", data, body + 12 * i)
                if kind_flag:
                    bits, offset = m_offset >> 24, m_offset & 0xFFFFFF
                else:
                    bits, offset = 0, m_offset
                members.append(Member(self.string(m_name), m_type, offset, bits))
            return new(size=size_or_type, members=tuple(members))
        if kind == Kind.ENUM:
            fmt = order + ("Ii" if kind_flag else "II")
            values = tuple(
                EnumValue(self.string(n), v)
                for n, v in (struct.unpack_from(fmt, data, body + 8 * i) for i in range(vlen))
            )
            return new(size=size_or_type, values=values)
        if kind == Kind.ENUM64:
            values_64 = []
            for i in range(vlen):
                n, lo, hi = struct.unpack_from(order + "III", data, body + 12 * i)
                value = (hi << 32) | lo
                if kind_flag and value >= 1 << 63:
                    value -= 1 << 64
                values_64.append(EnumValue(self.string(n), value))
            return new(size=size_or_type, values=tuple(values_64))
        if kind == Kind.FUNC_PROTO:
            params = tuple(
                Param(self.string(n), t)
                for n, t in (struct.unpack_from(order + "II", data, body + 8 * i) for i in range(vlen))
            )
            return new(type_id=size_or_type, params=params)
        if kind == Kind.VAR:
            (linkage,) = struct.unpack_from(order + "I", data, body)
            return new(type_id=size_or_type, linkage=linkage)
        if kind == Kind.DATASEC:
            secinfos = tuple(
                VarSecinfo(*struct.unpack_from(order + "III", data, body + 12 * i)) for i in range(vlen)
            )
            return new(size=size_or_type, secinfos=secinfos)
        if kind == Kind.DECL_TAG:
            (component,) = struct.unpack_from(order + "i", data, body)
            return new(type_id=size_or_type, component_idx=component)
        if kind == Kind.FUNC:
            return new(type_id=size_or_type, linkage=vlen)
        if kind == Kind.FLOAT:
            return new(size=size_or_type)
        # PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG.
        return new(type_id=size_or_type)

    @functools.cached_property
    def _by_name(self) -> dict[str, list[int]]:
        names: dict[str, list[int]] = {}
        name_offset = struct.Struct(self._order + "I")
        for type_id in range(1, len(self._offsets)):
            (offset,) = name_offset.unpack_from(self._data, self._offsets[type_id])
            if offset:
                names.setdefault(self.string(offset), []).append(type_id)
        return names

    def find(self, name: str, kind: Kind | None = None) -> list[int]:
        """The ids of the types called ``name``.

        Parameters
        ----------
        name
            The type's name (``"task_struct"``, not ``"struct task_struct"``).
        kind
            Only types of this kind.

        Returns
        -------
        list of int
            Possibly empty.
        """
        ids = self._by_name.get(name, [])
        return [i for i in ids if kind is None or self.type(i).kind == kind]

    def resolve(self, type_id: int) -> int:
        """Follow typedefs, const, volatile, restrict and type tags to the type they name.

        Parameters
        ----------
        type_id
            Any type id.

        Returns
        -------
        int
            The id of the first type that is not one of those.
        """
        seen = 0
        while self.type(type_id).kind in MODIFIERS:
            type_id = self.type(type_id).type_id
            seen += 1
            if seen > 64:
                raise DecodeError(f"BTF type {type_id}: a loop of typedefs or modifiers")
        return type_id

    @functools.cached_property
    def pointer_size(self) -> int:
        """Bytes in a pointer: the size of ``long`` in this BTF, else 8."""
        for type_id in self.find("long", Kind.INT) + self.find("unsigned long", Kind.INT):
            return self.type(type_id).size
        return 8

    def size_of(self, type_id: int) -> int:
        """``sizeof`` the type, in bytes.

        Parameters
        ----------
        type_id
            A type with a size (not void, a function or a forward declaration).

        Returns
        -------
        int
        """
        t = self.type(self.resolve(type_id))
        if t.kind in (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC, Kind.FLOAT):
            return t.size
        if t.kind == Kind.PTR:
            return self.pointer_size
        if t.kind == Kind.ARRAY:
            return t.array[2] * self.size_of(t.array[0])
        if t.kind == Kind.VAR:
            return self.size_of(t.type_id)
        raise DecodeError(f"BTF type {t.id} ({t.kind.name} {t.name!r}) has no size")

    def enum_members(self, type_id: int) -> dict[str, int]:
        """An enum's enumerators, name to value.

        Parameters
        ----------
        type_id
            An ENUM or ENUM64 type, or a typedef of one.

        Returns
        -------
        dict of str to int
        """
        t = self.type(self.resolve(type_id))
        if t.kind not in (Kind.ENUM, Kind.ENUM64):
            raise DecodeError(f"BTF type {t.id} is a {t.kind.name}, not an enum")
        return {v.name: v.value for v in t.values}

    def describe(self, type_id: int) -> str:
        """A short C-like spelling of a type, for messages (``struct info``, ``u32``)."""
        t = self.type(type_id)
        if t.kind in (Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64):
            keyword = {Kind.STRUCT: "struct", Kind.UNION: "union"}.get(t.kind, "enum")
            return f"{keyword} {t.name or '(anon)'}"
        if t.kind == Kind.PTR:
            return f"{self.describe(t.type_id)} *"
        if t.kind == Kind.ARRAY:
            return f"{self.describe(t.array[0])}[{t.array[2]}]"
        if t.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            return f"{t.kind.name.lower()} {self.describe(t.type_id)}"
        return t.name or t.kind.name.lower()


def map_definitions(btf: Btf) -> dict[str, MapDefinition]:
    """The BTF-defined maps declared in an object's ``.maps`` section.

    libbpf's convention: each map is a global variable of an anonymous struct
    whose members are pointers. ``__uint(name, N)`` declares ``int (*name)[N]``,
    so the value is the length of the pointed-to array; ``__type(name, T)``
    declares ``T *name``, so ``key``/``value`` point at the key and value types.

    Parameters
    ----------
    btf
        The object's BTF.

    Returns
    -------
    dict of str to MapDefinition
        By map name, in declaration order; empty if there is no ``.maps`` section.
    """
    found: dict[str, MapDefinition] = {}
    for datasec_id in btf.find(".maps", Kind.DATASEC):
        for info in btf.type(datasec_id).secinfos:
            var = btf.type(info.type_id)
            definition = btf.type(btf.resolve(var.type_id))
            if definition.kind != Kind.STRUCT:
                continue
            attributes: dict[str, int] = {}
            types: dict[str, int] = {}
            for member in definition.members:
                pointer = btf.type(btf.resolve(member.type_id))
                if pointer.kind != Kind.PTR:
                    continue
                target = btf.type(pointer.type_id)
                if target.kind == Kind.ARRAY and member.name not in ("key", "value"):
                    attributes[member.name] = target.array[2]
                else:
                    types[member.name] = pointer.type_id
            found[var.name] = MapDefinition(var.name, attributes, types.get("key"), types.get("value"))
    return found
