"""Struct layouts read from C source, checked against the C compiler's own offsets."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import textwrap

import pytest

from bpfnb.decode.cstructs import ParseError, SourceTypes, ctype_of

DECLARATIONS = textwrap.dedent(
    """
    #define COMM_LEN 16
    typedef unsigned long long u64;
    typedef unsigned int u32;
    typedef unsigned short u16;
    typedef unsigned char u8;
    struct inner { u16 a; u8 b; };            /* 4 bytes with padding */
    typedef struct { u32 x; } anon_t;
    enum color { RED, GREEN, BLUE };
    struct __attribute__((packed)) pk { u8 a; u32 b; };
    struct event {
        int pid;
        u64 t;
        unsigned char small;
        struct inner in;
        anon_t an;
        enum color c;
        union { u32 i; float f; } u;
        unsigned int bits:3, more:5;
        int arr[2][3];
        char *p;
        struct pk pk;
        char comm[COMM_LEN];   // a macro size
        const volatile unsigned long long last;
    };
    """
)
FIELDS = ["pid", "t", "small", "in", "an", "c", "u", "bits", "more", "arr", "p", "pk", "comm", "last"]


def c_offsets(directory) -> dict[str, int]:
    """Offsets and size as the C compiler lays them out."""
    if shutil.which("cc") is None:
        pytest.skip("no C compiler (cc) to compare with")
    program = DECLARATIONS + textwrap.dedent(
        """
        #include <stddef.h>
        #include <stdio.h>
        int main(void) {
            printf("size %zu\\n", sizeof(struct event));
        """
    )
    for field in FIELDS:
        if field not in ("bits", "more"):  # bit-fields have no offsetof
            program += f'    printf("{field} %zu\\n", offsetof(struct event, {field}));\n'
    program += "    return 0;\n}\n"
    binary = directory / "offsets"
    subprocess.run(["cc", "-x", "c", "-o", str(binary), "-"], input=program, check=True, text=True)
    lines = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.split("\n")
    return {name: int(value) for name, value in (line.split() for line in lines if line)}


def test_the_event_struct_is_found_by_its_field_names():
    event = SourceTypes(DECLARATIONS).find(FIELDS)
    assert event is not None and event.__name__ == "event"


def test_layout_matches_the_c_compiler(tmp_path):
    event = SourceTypes(DECLARATIONS).find(FIELDS)
    expected = c_offsets(tmp_path)
    assert ctypes.sizeof(event) == expected.pop("size")
    assert {name: getattr(event, name).offset for name in expected} == expected


def test_values_round_trip_through_the_layout():
    types = SourceTypes(DECLARATIONS)
    event = types.find(FIELDS)()
    event.bits, event.more = 5, 17
    raw = bytes(event)
    back = types.find(FIELDS).from_buffer_copy(raw)
    assert (back.bits, back.more) == (5, 17)
    assert ctypes.sizeof(types.records["struct pk"]) == 5
    assert ctypes.sizeof(types.records["struct inner"]) == 4


def test_no_match_and_unknown_types():
    types = SourceTypes(DECLARATIONS)
    assert types.find(["nope"]) is None
    # A struct using a type the parser cannot know is skipped, the rest still parse.
    types = SourceTypes("struct a { mystery_t m; }; struct b { int x; };")
    assert "struct a" not in types.records and types.find(["x"]) is not None
    with pytest.raises(ParseError):
        SourceTypes("")._number("NOT_DEFINED")
    # Unfinished declarations end the scan instead of looping.
    for cut in ("struct a { int x; } __attribute__((packed", "enum e { A, B", "typedef struct { int"):
        assert SourceTypes(cut).records == {}


def test_function_bodies_and_uses_are_not_definitions():
    source = DECLARATIONS + "int f(void *ctx) { struct event e = {}; struct inner *i = 0; return 0; }"
    types = SourceTypes(source)
    assert set(types.records) == {"struct inner", "struct pk", "struct event"}


def test_type_names_as_bcc_prints_them():
    assert ctype_of("unsigned int") is ctypes.c_uint32
    assert ctype_of("char[16]")._length_ == 16
    assert ctype_of("u32[2][3]")._length_ == 2 and ctype_of("u32[2][3]")._type_._length_ == 3
    assert ctype_of("struct task_struct *") is ctypes.c_uint64
    with pytest.raises(ParseError, match="unknown field type 'mystery_t'"):
        ctype_of("mystery_t")
