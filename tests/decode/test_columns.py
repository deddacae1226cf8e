"""Decoding kernel bytes into DataFrames, on bytes recorded from a real kernel (no root)."""

from __future__ import annotations

import ctypes
import time

import numpy as np
import pandas as pd
import pytest

from bpfnb.decode.columns import columns_of, to_frame
from bpfnb.decode.decoders import apply_decoders, boot_to_wall
from bpfnb.decode.dtypes import c_type_name, dtype_of
from bpfnb.decode.strings import strings_from_chars
from bpfnb.errors import DecodeError
from bpfnb.kernel.symbols import KernelSymbols, syscall_name

# ---------------------------------------------------------------------------
# A fixture recorded from Linux 6.18 with BCC 0.26: a tracepoint program wrote two
# entries into BPF_HASH(h, struct key_t, struct val_t) and bpfnb read the map's raw
# bytes. The C types were
#
#   struct inner { u16 port; char tag[3]; };
#   struct key_t { u8 kind; u64 id; struct inner in; char name[8]; };
#   struct val_t { u32 addr; u8 addr6[16]; s32 err; u64 ts; u16 hist[4];
#                  union { u32 small; u64 big; }; unsigned int flag:3; int level:5; };
#
# and BCC described them as (its explicit padding kept):
#   ["key_t", [["kind","unsigned char"], ["__pad_1","char",[7]], ["id","unsigned long long"],
#     ["in",["inner", [["port","unsigned short"], ["tag","char", [3]], ["__pad_end","char",[1]]],
#     "struct_packed"]], ["name","char", [8]], ["__pad_end","char",[2]]], "struct_packed"]
#   ["val_t", [["addr","unsigned int"], ["addr6","unsigned char", [16]], ["err","int"],
#     ["ts","unsigned long long"], ["hist","unsigned short", [4]], ["", [["small","unsigned int"],
#     ["big","unsigned long long"]], "union"], ["flag","unsigned int", 3], ["level","int", 5]], "struct"]
# The classes below are what BCC's BPF._decode_table_type builds from them.
# ---------------------------------------------------------------------------


class Inner(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("port", ctypes.c_ushort), ("tag", ctypes.c_char * 3), ("__pad_end", ctypes.c_char * 1)]


class Key(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("kind", ctypes.c_ubyte),
        ("__pad_1", ctypes.c_char * 7),
        ("id", ctypes.c_ulonglong),
        ("in", Inner),
        ("name", ctypes.c_char * 8),
        ("__pad_end", ctypes.c_char * 2),
    ]


class Anon(ctypes.Union):
    _fields_ = [("small", ctypes.c_uint), ("big", ctypes.c_ulonglong)]


class Value(ctypes.Structure):
    _anonymous_ = ("__anon0",)
    _fields_ = [
        ("addr", ctypes.c_uint),
        ("addr6", ctypes.c_ubyte * 16),
        ("err", ctypes.c_int),
        ("ts", ctypes.c_ulonglong),
        ("hist", ctypes.c_ushort * 4),
        ("__anon0", Anon),
        ("flag", ctypes.c_uint, 3),
        ("level", ctypes.c_int, 5),
    ]


KEYS = bytes.fromhex(
    "0773611f000000008877665544332211901f78797a7f6162007a7a0000000000"
    "c8a5031f000000000200000000000000000000797a02c3a9ff71006e6e6e0000"
)
VALUES = bytes.fromhex(
    "7f00000100000000000000000000000000000001feffffff15cd5b0700000000"
    "010002000300ffff0200000001000000ed00000000000000"
    "c0a80101fe8000000000000000000000000000000000000015cd5b0700000000"
    "010002000300ffff090000000100000078000000567f0000"
)


def recorded_frame(**options):
    keys = np.frombuffer(KEYS, dtype_of(Key))
    values = np.frombuffer(VALUES, dtype_of(Value))
    return to_frame({"key": keys, "value": values}, **options)


def test_dtype_follows_the_c_layout_and_drops_padding():
    key = dtype_of(Key)
    assert key.itemsize == ctypes.sizeof(Key) == 32
    assert {name: key.fields[name][1] for name in key.names} == {"kind": 0, "id": 8, "in": 16, "name": 22}
    assert dtype_of(Inner).names == ("port", "tag")
    assert dtype_of(Value).itemsize == ctypes.sizeof(Value) == 56


def test_u8_then_u64_is_aligned_like_c():
    class S(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint8), ("b", ctypes.c_uint64)]

    records = np.frombuffer(bytes([5]) + b"\xee" * 7 + (2**40 + 3).to_bytes(8, "little"), dtype_of(S))
    assert columns_of(records)["b"].tolist() == [2**40 + 3]
    assert columns_of(records)["a"].tolist() == [5]


def test_recorded_entries_decode_to_exact_columns():
    frame = recorded_frame()
    assert list(frame.columns) == [
        "kind", "id", "in.port", "in.tag", "name",
        "addr", "addr6", "err", "ts", "hist", "small", "big", "flag", "level",
    ]  # fmt: skip
    assert frame["kind"].tolist() == [7, 200]
    assert frame["id"].tolist() == [0x1122334455667788, 2]
    assert frame["in.port"].tolist() == [8080, 0]
    assert frame["in.tag"].tolist() == ["xyz", ""]
    # Cut at the first NUL ("ab\0zz"), invalid UTF-8 replaced ("\xc3\xa9\xffq").
    assert frame["name"].tolist() == ["ab", "\u00e9\ufffdq"]
    assert frame["name"].dtype == pd.Series(["x"]).dtype
    assert frame["err"].tolist() == [-2, 0]
    assert frame["ts"].tolist() == [123456789, 123456789]
    assert [a.tolist() for a in frame["hist"]] == [[1, 2, 3, 65535]] * 2
    assert frame["addr6"][0].dtype == np.uint8 and frame["addr6"][0].tolist() == [0] * 15 + [1]
    assert frame["small"].tolist() == [2, 9]
    assert frame["big"].tolist() == [0x100000002, 0x100000009]
    assert frame["flag"].tolist() == [5, 0]
    assert frame["level"].tolist() == [-3, 15]


def test_recorded_entries_with_decoders_keep_the_raw_value_next_to_it():
    frame = recorded_frame(decode={"addr": "ipv4", "addr6": "ipv6", "err": "errno", "kind": {7: "seven"}})
    assert frame["addr"].tolist() == ["127.0.0.1", "192.168.1.1"]
    assert frame["addr_raw"].tolist() == [0x0100007F, 0x0101A8C0]
    assert list(frame.columns[:3]) == ["kind", "kind_raw", "id"]
    assert list(frame.columns[6:10]) == ["addr", "addr_raw", "addr6", "addr6_raw"]
    assert frame["addr"].dtype == frame["addr6"].dtype == pd.Series(["x"]).dtype
    assert frame["addr6"].tolist() == ["::1", "fe80::"]
    assert frame["err"].tolist() == ["ENOENT", "0"]
    assert frame["kind"].tolist() == ["seven", "200"]


def test_scalar_parts_are_named_key_and_value():
    frame = to_frame({"key": np.array([3, 1], np.uint32), "value": np.array([10, 20], np.uint64)})
    assert list(frame.columns) == ["key", "value"]
    assert frame["value"].tolist() == [10, 20]


def test_a_field_in_both_key_and_value_is_prefixed():
    key = np.zeros(1, [("pid", "u4"), ("cpu", "u4")])
    value = np.zeros(1, [("pid", "u4"), ("count", "u8")])
    assert list(to_frame({"key": key, "value": value}).columns) == ["key.pid", "cpu", "value.pid", "count"]


def test_strings_are_cut_at_nul_and_vectorized_over_many_rows():
    chars = np.array([b"bash", b"", b"sixteen-chars-xy", b"a\x00garbage"], dtype="S16")
    assert list(strings_from_chars(chars)) == ["bash", "", "sixteen-chars-xy", "a"]
    assert list(strings_from_chars(chars[:3])) == ["bash", "", "sixteen-chars-xy"]  # NUL padding only
    many = np.repeat(chars, 50_000)
    assert list(strings_from_chars(many)[-4:]) == ["a"] * 4


@pytest.mark.parametrize("width", [1, 2, 3, 4, 6, 8, 12, 16, 24, 40])
def test_strings_match_a_byte_by_byte_reading_for_any_width(width):
    rng = np.random.default_rng(width)
    raw = rng.integers(0, 3, size=(3000, width)).astype(np.uint8) * rng.integers(1, 0x7F, size=(3000, width)).astype(
        np.uint8
    )
    raw[:1000, width // 2 :] = 0  # NUL-padded rows, as bpf_get_current_comm leaves them
    raw[2000:, 0] = 0xFF  # invalid UTF-8
    expected = [bytes(row).split(b"\0", 1)[0].decode("utf-8", "replace") for row in raw]
    assert list(strings_from_chars(raw.view(f"S{width}").reshape(-1))) == expected
    assert list(strings_from_chars(raw[:1000].view(f"S{width}").reshape(-1))) == expected[:1000]


def test_a_single_char_and_two_dimensional_arrays():
    class S(ctypes.Structure):
        _fields_ = [("c", ctypes.c_char), ("grid", (ctypes.c_int * 2) * 2)]

    s = S(b"x", ((1, 2), (3, 4)))
    columns = columns_of(np.frombuffer(bytes(s), dtype_of(S)))
    assert list(columns["c"]) == ["x"]
    assert columns["grid"][0].tolist() == [[1, 2], [3, 4]]


def test_decoders_on_other_layouts():
    frame = pd.DataFrame(
        {
            "a4": pd.Series([np.array([10, 0, 0, 1], np.uint8)], dtype=object),
            "nr": np.array([39], np.int64),
            "x": np.array([255], np.uint32),
            "f": np.array([2], np.int32),
        }
    )
    out = apply_decoders(frame, {"a4": "ipv4", "x": "hex", "f": lambda raw: raw * 10})
    assert out["a4"].tolist() == ["10.0.0.1"]
    assert out["x"].tolist() == ["0xff"]
    assert out["f"].tolist() == [20] and out["f_raw"].tolist() == [2]
    if syscall_name(39) != "39":  # x86-64 numbering, from the installed headers
        assert apply_decoders(frame, {"nr": "syscall"})["nr"].tolist() == ["getpid"]


def test_boot_time_becomes_wall_clock():
    now_boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    now_mono = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    wall = pd.Timestamp.now(tz="UTC")
    boot = boot_to_wall(np.array([now_boot - 5_000_000_000]))[0]
    mono = boot_to_wall(np.array([now_mono]), clock="monotonic")[0]
    assert abs((wall - boot).total_seconds() - 5) < 0.5
    assert abs((wall - mono).total_seconds()) < 0.5
    frame = to_frame({"value": np.array([now_boot], np.uint64)}, decode={"value": "boottime"})
    assert str(frame["value"].dtype) == "datetime64[ns, UTC]"


def test_decoding_errors_name_the_problem():
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(DecodeError, match="no such column"):
        apply_decoders(frame, {"b": "ipv4"})
    with pytest.raises(DecodeError, match="unknown decoder"):
        apply_decoders(frame, {"a": "nope"})
    with pytest.raises(DecodeError, match="4 bytes"):
        apply_decoders(pd.DataFrame({"a": np.array([1], np.uint64)}), {"a": "ipv4"})


def test_kernel_symbols_find_the_enclosing_function():
    table = KernelSymbols.from_text(
        "ffffffff81000000 T _stext\n"
        "ffffffff81001000 t helper_a\n"
        "ffffffff81002000 D some_data\n"
        "ffffffff81003000 T helper_b\t[mod]\n"
    )
    addresses = np.array([0xFFFFFFFF81001010, 0xFFFFFFFF81003FFF, 0x1234], np.uint64)
    assert table.names(addresses).tolist() == ["helper_a", "helper_b", "0x1234"]


def test_c_type_names():
    assert c_type_name(ctypes.c_uint32) == "u32"
    assert c_type_name(ctypes.c_char * 16) == "char[16]"
    assert c_type_name(Key) == "struct Key"
    assert c_type_name(None) == "none"
