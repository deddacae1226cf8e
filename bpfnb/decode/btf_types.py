"""ctypes types with the exact C layout of BTF types.

Every struct and union is built with ``_pack_ = 1`` and explicit padding
fields named ``__pad_N`` wherever the C compiler left a gap, so that every
member sits at the offset BTF records, whatever ctypes' own alignment rules
would do (packed structs, odd offsets, over-aligned members). Bit-fields are
regrouped into storage units chosen from BTF's bit offsets, with explicit
padding bits between them. Each struct is checked against BTF after it is
built: a layout ctypes got wrong raises rather than decode garbage.

Pointers become ``c_uint64`` (the address as a number: the memory it points
to is the kernel's). Enums become integers of their size; the structs that
hold them list the enumerators in ``_bpfnb_enums_``. Bit-fields that no
ctypes layout can express (only possible in packed structs) are left as
``__pad_N`` bytes and named in ``_bpfnb_unrepresented_``.
"""

from __future__ import annotations

import ctypes
import weakref
from dataclasses import dataclass
from typing import Any

from ..errors import DecodeError
from .btf import Btf, BtfType, Kind, Member

__all__ = ["CtypesBuilder", "ctype_of", "enum_columns", "field_bit_offset"]

_UNSIGNED = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}
_SIGNED = {1: ctypes.c_int8, 2: ctypes.c_int16, 4: ctypes.c_int32, 8: ctypes.c_int64}
_FLOATS = {4: ctypes.c_float, 8: ctypes.c_double}
_UNIT_SIZES = (1, 2, 4, 8)
_builders: weakref.WeakKeyDictionary[Btf, CtypesBuilder] = weakref.WeakKeyDictionary()


def ctype_of(btf: Btf, type_id: int) -> type:
    """The ctypes type with the C layout of a BTF type.

    Repeated calls for one ``btf`` share one :class:`CtypesBuilder`, so a
    struct used in several places is one class.

    Parameters
    ----------
    btf
        The BTF the id belongs to.
    type_id
        A type with a layout: not void, a function or a forward declaration.

    Returns
    -------
    type
        A ctypes scalar, array, ``Structure`` or ``Union`` class.
    """
    builder = _builders.get(btf)
    if builder is None:
        builder = _builders[btf] = CtypesBuilder(btf)
    return builder.ctype(type_id)


def enum_columns(ctype: type | None, prefix: str = "") -> dict[str, dict[int, str]]:
    """Value names of the enum fields of a struct built here, by the column each becomes.

    Column names follow :func:`bpfnb.decode.columns.columns_of`: nested
    fields as ``outer.inner``, members of anonymous structs without a prefix.
    """
    if ctype is None:
        return {}
    found = {prefix + field: dict(names) for field, names in getattr(ctype, "_bpfnb_enums_", {}).items()}
    for field in getattr(ctype, "_fields_", ()):
        name, ftype = field[0], field[1]
        if isinstance(ftype, type) and issubclass(ftype, (ctypes.Structure, ctypes.Union)):
            inner = prefix if name.startswith("__anon") else f"{prefix}{name}."
            found.update(enum_columns(ftype, inner))
    return found


def field_bit_offset(owner: type, name: str) -> tuple[int, int]:
    """Where ctypes put a field: its bit offset and its width in bits.

    Parameters
    ----------
    owner
        A ``Structure`` or ``Union`` class.
    name
        One of its fields.

    Returns
    -------
    tuple of (int, int)
        Bit offset from the start of ``owner`` (little-endian bit numbering),
        and width in bits (a whole field's is 8 * its size).
    """
    descriptor = getattr(owner, name)
    if hasattr(descriptor, "is_bitfield"):
        # Python 3.14 describes fields explicitly.
        if descriptor.is_bitfield:
            return descriptor.byte_offset * 8 + descriptor.bit_offset, descriptor.bit_size
        return descriptor.byte_offset * 8, descriptor.byte_size * 8
    # Python <= 3.13 packs a bit-field's width and bit offset into ``size``,
    # which is ambiguous with the byte size of a field of 64 KiB or more: ask
    # the declaration whether the field is a bit-field.
    declared = next(f for f in getattr(owner, "_fields_") if f[0] == name)
    if len(declared) == 3:
        return descriptor.offset * 8 + (descriptor.size & 0xFFFF), descriptor.size >> 16
    return descriptor.offset * 8, descriptor.size * 8


@dataclass
class _Layout:
    """The fields of one struct or union being built."""

    fields: list[tuple[Any, ...]]
    anonymous: list[str]
    enums: dict[str, dict[int, str]]
    unrepresented: list[str]
    pads: int = 0
    position: int = 0  # bytes laid out so far
    after_bitfield: bool = False

    def pad(self, size: int) -> None:
        if size > 0:
            self.fields.append((f"__pad_{self.pads}", ctypes.c_uint8 * size))
            self.pads += 1
            self.position += size
            self.after_bitfield = False

    def pad_bits(self, storage: type, bits: int) -> None:
        if bits > 0:
            self.fields.append((f"__pad_{self.pads}", storage, bits))
            self.pads += 1


class CtypesBuilder:
    """Builds (and remembers) the ctypes types of one BTF.

    Parameters
    ----------
    btf
        The BTF whose types to build.
    """

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self._built: dict[int, type] = {}

    def ctype(self, type_id: int) -> type:
        """The ctypes type of ``type_id`` (see :func:`ctype_of`)."""
        try:
            return self._built[type_id]
        except KeyError:
            pass
        built = self._build(self.btf.type(type_id))
        self._built[type_id] = built
        return built

    # ------------------------------------------------------------------ kinds

    def _build(self, t: BtfType) -> type:
        if t.kind in (Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPE_TAG, Kind.VAR):
            return self.ctype(t.type_id)
        if t.kind == Kind.INT:
            return self._int(t)
        if t.kind == Kind.PTR:
            return _UNSIGNED[self.btf.pointer_size]
        if t.kind == Kind.ARRAY:
            element, _index, count = t.array
            element_type: Any = self.ctype(element)  # ctypes types multiply into array types
            array: type = element_type * count
            return array
        if t.kind in (Kind.ENUM, Kind.ENUM64):
            return self._integer(t.size, t.is_signed, t)
        if t.kind == Kind.FLOAT:
            return _FLOATS.get(t.size) or ctypes.c_uint8 * t.size
        if t.kind in (Kind.STRUCT, Kind.UNION):
            return self._record(t)
        if t.kind == Kind.DATASEC:
            return self._datasec(t)
        raise DecodeError(
            f"BTF type {t.id} ({t.kind.name} {t.name!r}) has no data layout",
            hint="only data types (not void, functions or forward declarations) can be decoded",
        )

    def _int(self, t: BtfType) -> type:
        if t.is_bool and t.size == 1:
            return ctypes.c_bool
        if t.is_char:
            return ctypes.c_char
        if t.size == 16:
            # ctypes has no 128-bit integer: two 64-bit halves, low half first.
            return (ctypes.c_int64 if t.is_signed else ctypes.c_uint64) * 2
        return self._integer(t.size, t.is_signed, t)

    @staticmethod
    def _integer(size: int, signed: bool, t: BtfType) -> type:
        table = _SIGNED if signed else _UNSIGNED
        if size not in table:
            raise DecodeError(f"BTF type {t.id} ({t.kind.name} {t.name!r}) is {size} bytes: no ctypes integer")
        return table[size]

    def _datasec(self, t: BtfType) -> type:
        # A DATASEC (.bss, .data, .rodata) laid out as a struct of its variables.
        members = tuple(
            Member(self.btf.type(info.type_id).name, info.type_id, info.offset * 8, 0)
            for info in sorted(t.secinfos, key=lambda s: s.offset)
        )
        record = BtfType(t.id, Kind.STRUCT, t.name, size=t.size, members=members)
        return self._record(record)

    # ------------------------------------------------------------------ records

    def _record(self, t: BtfType) -> type:
        layout = _Layout([], [], {}, [])
        if t.kind == Kind.UNION:
            self._union_members(t, layout)
        else:
            self._struct_members(t, layout)
        base = ctypes.Union if t.kind == Kind.UNION else ctypes.Structure
        namespace = {
            # Explicit padding does all the aligning; "ms" only names the
            # layout rules _pack_ implies, which Python 3.14 wants spelled out.
            "_pack_": 1,
            "_layout_": "ms",
            "_anonymous_": tuple(layout.anonymous),
            "_fields_": layout.fields,
            "_bpfnb_enums_": layout.enums,
            "_bpfnb_unrepresented_": tuple(layout.unrepresented),
            "_bpfnb_btf_id_": t.id,
        }
        name = t.name or f"anon_{t.kind.name.lower()}_{t.id}"
        cls = type(name, (base,), namespace)
        self._check(t, cls)
        return cls

    def _member_name(self, member: Member, index: int, layout: _Layout | None = None) -> str:
        """The field name of a member; anonymous structs and unions become
        ``__anon_N`` (listed in ``_anonymous_`` when ``layout`` is given),
        unnamed anything-else ``__pad_anon_N``."""
        if member.name:
            return member.name
        target = self.btf.type(self.btf.resolve(member.type_id))
        if target.kind not in (Kind.STRUCT, Kind.UNION):
            return f"__pad_anon_{index}"
        name = f"__anon_{index}"
        if layout is not None:
            layout.anonymous.append(name)
        return name

    def _note_enum(self, name: str, type_id: int, layout: _Layout) -> None:
        target = self.btf.type(self.btf.resolve(type_id))
        if target.kind in (Kind.ENUM, Kind.ENUM64):
            layout.enums[name] = {v.value: v.name for v in target.values}

    def _bitfield(self, member: Member) -> tuple[int, int] | None:
        """(bit offset, width) when ``member`` is a bit-field, else None."""
        if member.bitfield_size:
            return member.bit_offset, member.bitfield_size
        # Without the kind flag, old BTF marks bit-fields in the INT type itself.
        target = self.btf.type(self.btf.resolve(member.type_id))
        if target.kind == Kind.INT and (target.int_offset or target.int_bits != target.size * 8):
            return member.bit_offset + target.int_offset, target.int_bits
        return None

    def _is_signed(self, type_id: int) -> bool:
        return self.btf.type(self.btf.resolve(type_id)).is_signed

    def _union_members(self, t: BtfType, layout: _Layout) -> None:
        for index, member in enumerate(t.members):
            name = self._member_name(member, index, layout)
            self._note_enum(name, member.type_id, layout)
            bitfield = self._bitfield(member)
            if bitfield is None:
                layout.fields.append((name, self.ctype(member.type_id)))
                continue
            _offset, bits = bitfield
            unit = next(s for s in _UNIT_SIZES if s * 8 >= bits)
            storage = (_SIGNED if self._is_signed(member.type_id) else _UNSIGNED)[unit]
            layout.fields.append((name, storage, bits))
        widest = max((ctypes.sizeof(f[1]) for f in layout.fields), default=0)
        if widest < t.size:
            # A padding member as wide as the union carries its trailing padding.
            layout.fields.append((f"__pad_{layout.pads}", ctypes.c_uint8 * t.size))

    def _struct_members(self, t: BtfType, layout: _Layout) -> None:
        members = sorted(enumerate(t.members), key=lambda im: im[1].bit_offset)
        i = 0
        while i < len(members):
            index, member = members[i]
            if self._bitfield(member) is not None and self.btf.byteorder == "little":
                run_end = i
                while run_end < len(members) and self._bitfield(members[run_end][1]) is not None:
                    run_end += 1
                limit = members[run_end][1].bit_offset // 8 if run_end < len(members) else t.size
                self._bitfield_run(members[i:run_end], limit, layout)
                i = run_end
                continue
            if self._bitfield(member) is not None:
                # Big-endian bit-fields number their bits from the other end;
                # no machine bpfnb runs on needs them yet.
                layout.unrepresented.append(member.name)
                i += 1
                continue
            name = self._member_name(member, index, layout)
            if member.bit_offset % 8:
                raise DecodeError(f"{t.name or 'anonymous struct'}.{name} starts in the middle of a byte")
            layout.pad(member.bit_offset // 8 - layout.position)
            ctype = self.ctype(member.type_id)
            layout.fields.append((name, ctype))
            self._note_enum(name, member.type_id, layout)
            layout.position = member.bit_offset // 8 + ctypes.sizeof(ctype)
            layout.after_bitfield = False
            i += 1
        layout.pad(t.size - layout.position)

    def _bitfield_run(self, run: list[tuple[int, Member]], limit: int, layout: _Layout) -> None:
        """Lay out consecutive bit-fields as storage units of 1, 2, 4 or 8 bytes.

        Each unit starts at the byte of its first bit-field (``_pack_ = 1``
        lets it start anywhere), holds as many following bit-fields as fit
        without reaching the byte of a bit-field it does not hold, and is
        filled to the last bit with padding bits, so ctypes has no choice left.
        """
        # Every member of a run is a bit-field, so none of these is None.
        spans = [span for span in (self._bitfield(m) for _, m in run) if span is not None]
        i = 0
        while i < len(run):
            start = spans[i][0] // 8
            choice = None
            for j in range(len(run), i, -1):
                end = max((o + b + 7) // 8 for o, b in spans[i:j])
                next_start = spans[j][0] // 8 if j < len(run) else limit
                if next_start < end or end - start > 8:
                    continue
                unit = next((s for s in _UNIT_SIZES if end - start <= s <= next_start - start), None)
                if unit is not None:
                    choice = (j, unit)
                    break
            if choice is None or start < layout.position:
                # Only packed structs get here: a bit-field sharing bytes with
                # neighbours across more than 8 bytes. Keep its bytes as padding.
                j = i + 1
                while j < len(run) and spans[j][0] // 8 < (spans[j - 1][0] + spans[j - 1][1] + 7) // 8:
                    j += 1
                end = max((o + b + 7) // 8 for o, b in spans[i:j])
                layout.unrepresented.extend(m.name for _, m in run[i:j])
                layout.pad(max(0, start - layout.position))
                layout.pad(end - layout.position)
                i = j
                continue
            j, unit = choice
            layout.pad(start - layout.position)
            if layout.after_bitfield:
                # Python <= 3.13 would widen the previous unit to hold the next
                # bit-field of a larger type (gcc's rule, without _pack_'s
                # limits); a zero-size field between units prevents that.
                layout.fields.append((f"__pad_{layout.pads}", ctypes.c_uint8 * 0))
                layout.pads += 1
            used = start * 8
            for (index, member), (offset, bits) in zip(run[i:j], spans[i:j]):
                layout.pad_bits(_UNSIGNED[unit], offset - used)
                name = self._member_name(member, index, layout)
                storage = (_SIGNED if self._is_signed(member.type_id) else _UNSIGNED)[unit]
                layout.fields.append((name, storage, bits))
                self._note_enum(name, member.type_id, layout)
                used = offset + bits
            layout.pad_bits(_UNSIGNED[unit], (start + unit) * 8 - used)
            layout.position = start + unit
            layout.after_bitfield = True
            i = j

    def _check(self, t: BtfType, cls: type) -> None:
        """Raise unless ctypes placed every member where BTF says it is."""
        if ctypes.sizeof(cls) != t.size:
            raise DecodeError(
                f"ctypes made {cls.__name__} {ctypes.sizeof(cls)} bytes, BTF says {t.size}",
                hint="this is a bpfnb bug: please report it with the struct's definition",
            )
        unrepresented = set(getattr(cls, "_bpfnb_unrepresented_"))
        for index, member in enumerate(t.members):
            if member.name in unrepresented:
                continue
            name = self._member_name(member, index)
            if t.kind == Kind.UNION:
                expected = 0
            else:
                bitfield = self._bitfield(member)
                expected = bitfield[0] if bitfield else member.bit_offset
            placed, _bits = field_bit_offset(cls, name)
            if placed != expected:
                raise DecodeError(
                    f"ctypes placed {cls.__name__}.{name} at bit {placed}, BTF says bit {expected}",
                    hint="this is a bpfnb bug: please report it with the struct's definition",
                )
