"""BTF read in pure Python, and ctypes layouts built from it: checked against bpftool and against C itself."""

from __future__ import annotations

import ctypes
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bpfnb import DecodeError
from bpfnb.decode.btf import Btf, Kind, map_definitions
from bpfnb.decode.btf_types import CtypesBuilder, ctype_of, enum_columns, field_bit_offset
from bpfnb.engines.libbpf.vmlinux import bpftool_path
from bpfnb.kernel.environment import KERNEL_BTF

from ..libbpf_cells import LAYOUT_CELL, compile_cell

needs_kernel_btf = pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel has no BTF")

KINDS_CELL = r"""
struct fwd_only;
typedef unsigned int my_u32;
struct tagged {
    int __attribute__((btf_type_tag("user"))) *user_ptr;
    const volatile int cv;
    int *restrict rp;
    struct fwd_only *opaque;
    my_u32 renamed;
    float f;
};
struct tagged holder __attribute__((btf_decl_tag("bpfnb_tag")));
int add(int a, int b) { return a + b + holder.renamed; }
"""

_RAW_TYPE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_RAW_MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?$")
RawTypes = dict[int, tuple[str, str, list[tuple[str, int, int, int]]]]


def bpftool_raw(path: Path) -> RawTypes:
    """bpftool's own reading of a BTF file: id -> (kind, name, members)."""
    out = subprocess.run(
        [bpftool_path(), "btf", "dump", "file", str(path), "format", "raw"], capture_output=True, text=True, check=True
    ).stdout
    types: RawTypes = {}
    current: list[tuple[str, int, int, int]] = []
    for line in out.splitlines():
        found = _RAW_TYPE.match(line)
        if found:
            current = []
            types[int(found[1])] = (found[2], "" if found[3] == "(anon)" else found[3], current)
            continue
        member = _RAW_MEMBER.match(line)
        if member:
            name = "" if member[1] == "(anon)" else member[1]
            current.append((name, int(member[2]), int(member[3]), int(member[4] or 0)))
    return types


@pytest.fixture(scope="module")
def layouts() -> tuple[Btf, Path]:
    compiled = compile_cell(LAYOUT_CELL)
    return Btf.from_elf(compiled.data), compiled.path


@pytest.fixture(scope="module")
def kinds() -> tuple[Btf, Path]:
    compiled = compile_cell(KINDS_CELL, with_header=False)
    return Btf.from_elf(compiled.data), compiled.path


@pytest.fixture(scope="module")
def kernel_btf() -> Btf:
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no BTF")
    return Btf.from_file(KERNEL_BTF)


def _by_name(btf: Btf, name: str) -> type:
    return ctype_of(btf, btf.find(name)[0])


def _fields(ctype: type) -> dict[str, object]:
    return dict(getattr(ctype, "_fields_"))


# ---------------------------------------------------------------- the reader


def test_every_type_matches_bpftool(layouts: tuple[Btf, Path], kinds: tuple[Btf, Path]) -> None:
    for btf, path in (layouts, kinds):
        oracle = bpftool_raw(path)
        assert len(btf) - 1 == len(oracle)
        for type_id, (kind, name, members) in oracle.items():
            t = btf.type(type_id)
            assert (t.kind.name, t.name) == (kind, name), type_id
            assert [(m.name, m.type_id, m.bit_offset, m.bitfield_size) for m in t.members] == members


def test_object_has_every_kind_clang_emits(kinds: tuple[Btf, Path], layouts: tuple[Btf, Path]) -> None:
    present = {layouts[0].type(i).kind for i in range(1, len(layouts[0]))}
    present |= {kinds[0].type(i).kind for i in range(1, len(kinds[0]))}
    # ENUM64 needs clang >= 15; the kernel's BTF has it (see below).
    assert present == set(Kind) - {Kind.VOID, Kind.ENUM64}


def test_kind_details(kinds: tuple[Btf, Path]) -> None:
    btf = kinds[0]
    tag = btf.type(btf.find("bpfnb_tag", Kind.DECL_TAG)[0])
    assert btf.type(tag.type_id).name == "holder" and tag.component_idx == -1
    type_tag = btf.type(btf.find("user", Kind.TYPE_TAG)[0])
    assert btf.type(type_tag.type_id).name == "int"
    proto = btf.type(btf.type(btf.find("add", Kind.FUNC)[0]).type_id)
    assert [p.name for p in proto.params] == ["a", "b"] and btf.type(proto.type_id).name == "int"
    assert btf.type(btf.find("fwd_only", Kind.FWD)[0]).kind_flag is False  # a struct, not a union
    assert btf.type(btf.find("float", Kind.FLOAT)[0]).size == 4
    datasec = btf.type(btf.find(".bss", Kind.DATASEC)[0])
    assert [btf.type(s.type_id).name for s in datasec.secinfos] == ["holder"]
    assert btf.resolve(btf.find("my_u32", Kind.TYPEDEF)[0]) == btf.find("unsigned int", Kind.INT)[0]


def test_kernel_btf_reads_like_bpftool(kernel_btf: Btf) -> None:
    oracle = bpftool_raw(KERNEL_BTF)
    assert len(kernel_btf) - 1 == len(oracle)
    for type_id in range(1, len(kernel_btf), 97):  # a sample across the whole range
        kind, name, members = oracle[type_id]
        t = kernel_btf.type(type_id)
        assert (t.kind.name, t.name) == (kind, name)
        assert [(m.name, m.type_id, m.bit_offset, m.bitfield_size) for m in t.members] == members
    enum64 = [i for i in range(1, len(kernel_btf)) if kernel_btf.type(i).kind == Kind.ENUM64]
    assert enum64, "6.x kernels built with pahole have 64-bit enums"
    members = kernel_btf.enum_members(enum64[0])
    assert members and all(isinstance(v, int) for v in members.values())
    assert ctypes.sizeof(ctype_of(kernel_btf, enum64[0])) == 8


def test_every_kernel_struct_and_union_gets_a_checked_ctypes_layout(kernel_btf: Btf) -> None:
    builder = CtypesBuilder(kernel_btf)
    records = [i for i in range(1, len(kernel_btf)) if kernel_btf.type(i).kind in (Kind.STRUCT, Kind.UNION)]
    for type_id in records:
        assert ctypes.sizeof(builder.ctype(type_id)) == kernel_btf.type(type_id).size
    task = builder.ctype(kernel_btf.find("task_struct", Kind.STRUCT)[0])
    assert getattr(task, "comm").size == 16
    assert len(records) > 10000


def test_not_btf_is_refused() -> None:
    with pytest.raises(DecodeError):
        Btf(b"\x00" * 64)
    with pytest.raises(DecodeError):
        Btf.from_elf(b"not an elf file at all........................................")


def test_truncated_btf_is_refused(layouts: tuple[Btf, Path]) -> None:
    from bpfnb.decode.elf import elf_sections

    raw = elf_sections(layouts[1].read_bytes())[".BTF"]
    assert len(Btf(raw)) == len(layouts[0])
    for cut in (10, 30, len(raw) // 2, len(raw) - 1):
        with pytest.raises(DecodeError):
            Btf(raw[:cut])


# ---------------------------------------------------------------- layouts


def test_u8_then_u64_gets_explicit_padding(layouts: tuple[Btf, Path]) -> None:
    all_ = _by_name(layouts[0], "all")
    fields = getattr(all_, "_fields_")
    assert fields[:3] == [("small", ctypes.c_uint8), ("__pad_0", fields[1][1]), ("large", ctypes.c_uint64)]
    assert ctypes.sizeof(fields[1][1]) == 7 and getattr(all_, "large").offset == 8


def test_nested_structs_arrays_and_char_arrays(layouts: tuple[Btf, Path]) -> None:
    btf = layouts[0]
    fields = _fields(_by_name(btf, "all"))
    inner = _by_name(btf, "inner")
    assert fields["in"] is inner
    assert fields["arr"] == inner * 3  # type: ignore[operator]
    matrix = fields["matrix"]
    assert getattr(matrix, "_length_") == 2
    assert getattr(matrix, "_type_")._length_ == 3 and getattr(matrix, "_type_")._type_ is ctypes.c_uint32
    assert fields["name"] == ctypes.c_char * 8
    assert ctypes.sizeof(inner) == 4 and getattr(inner, "_fields_")[-1][0] == "__pad_0"


def test_enums_are_ints_of_their_size_with_names(layouts: tuple[Btf, Path]) -> None:
    btf = layouts[0]
    all_ = _by_name(btf, "all")
    assert _fields(all_)["color"] is ctypes.c_uint32
    assert getattr(all_, "_bpfnb_enums_")["color"] == {1: "RED", 2: "GREEN", 40: "BLUE"}
    assert btf.enum_members(btf.find("color")[0]) == {"RED": 1, "GREEN": 2, "BLUE": 40}
    assert _fields(all_)["wide"] is ctypes.c_uint64


def test_enum_columns_follow_nesting_and_anonymous_members(layouts: tuple[Btf, Path]) -> None:
    # The names the frame's columns get: nested fields as outer.inner.
    columns = enum_columns(_by_name(layouts[0], "all"))
    colors = {1: "RED", 2: "GREEN", 40: "BLUE"}
    assert set(columns) == {"color", "wide", "bits.c"}
    assert columns["color"] == columns["bits.c"] == colors
    # clang 14 has no ENUM64: it writes a 64-bit enum's values cut to 32 bits,
    # so the names are only as right as the object's BTF (bpftool shows the same).
    wide = layouts[0].enum_members(layouts[0].find("wide")[0])
    assert columns["wide"] == {value: name for name, value in wide.items()}
    assert columns["wide"][1] == "WIDE_SMALL"
    assert enum_columns(_by_name(layouts[0], "inner")) == {}
    assert enum_columns(None) == {}


def test_bitfields_sit_at_btf_offsets(layouts: tuple[Btf, Path]) -> None:
    btf = layouts[0]
    bits = _by_name(btf, "bits")
    record = btf.type(btf.find("bits")[0])
    for member in record.members:
        assert field_bit_offset(bits, member.name) == (member.bit_offset, member.bitfield_size)
    assert getattr(bits, "_bpfnb_enums_") == {"c": {1: "RED", 2: "GREEN", 40: "BLUE"}}
    assert ctypes.sizeof(bits) == 16


def test_packed_struct_has_no_padding(layouts: tuple[Btf, Path]) -> None:
    packed = _by_name(layouts[0], "packed")
    offsets = [(n, getattr(packed, n).offset) for n, _t in getattr(packed, "_fields_")]
    assert offsets == [("a", 0), ("b", 1), ("c", 5)]
    assert ctypes.sizeof(packed) == 7


def test_inexpressible_bitfields_are_marked_not_guessed(layouts: tuple[Btf, Path]) -> None:
    # b (20 bits from bit 8) and c (20 bits from bit 28) share byte 3 and
    # together span 5 bytes: no ctypes integer is 5 bytes wide.
    overlapping = _by_name(layouts[0], "overlapping")
    assert getattr(overlapping, "_bpfnb_unrepresented_") == ("b", "c")
    assert [n for n, *_ in getattr(overlapping, "_fields_")] == ["a", "__pad_0", "d"]
    assert getattr(overlapping, "d").offset == 6 and ctypes.sizeof(overlapping) == 7


def test_unions_and_anonymous_members(layouts: tuple[Btf, Path]) -> None:
    btf = layouts[0]
    number = _by_name(btf, "number")
    assert issubclass(number, ctypes.Union) and ctypes.sizeof(number) == 4
    value = number.from_buffer_copy((0x3FC00000).to_bytes(4, "little"))
    assert value.f == 1.5 and list(value.bytes) == [0, 0, 0xC0, 0x3F]
    instance = _by_name(btf, "all")()
    instance.anon_a = 5  # reached through _anonymous_
    assert instance.anon_a == 5


def test_pointers_floats_and_forward_declarations(kinds: tuple[Btf, Path]) -> None:
    btf = kinds[0]
    tagged = _fields(_by_name(btf, "tagged"))
    assert tagged["opaque"] is ctypes.c_uint64
    assert tagged["user_ptr"] is ctypes.c_uint64
    assert tagged["f"] is ctypes.c_float
    with pytest.raises(DecodeError):
        ctype_of(btf, btf.find("fwd_only", Kind.FWD)[0])


def test_numpy_reads_the_same_layout(layouts: tuple[Btf, Path]) -> None:
    # bpfnb's decoder turns ctypes types into numpy dtypes.
    for name in ("inner", "packed"):
        ctype = _by_name(layouts[0], name)
        assert np.dtype(ctype).itemsize == ctypes.sizeof(ctype)
    fields = np.dtype(_by_name(layouts[0], "packed")).fields
    assert fields is not None and fields["b"][1] == 1


def test_map_definitions_from_the_maps_section(layouts: tuple[Btf, Path]) -> None:
    btf = layouts[0]
    maps = map_definitions(btf)
    assert list(maps) == ["alls", "overlaps"]
    alls = maps["alls"]
    assert alls.map_type == 2 and alls.max_entries == 1  # BPF_MAP_TYPE_ARRAY
    assert btf.describe(alls.key_type_id) == "u32"
    assert btf.describe(alls.value_type_id) == "struct all"
