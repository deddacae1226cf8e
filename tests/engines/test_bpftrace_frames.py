"""bpftrace's JSON map records as frames (pure; records as bpftrace 0.17 printed them here)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import bpfnb.plot
from bpfnb.decode.histogram import percentiles
from bpfnb.engines.bpftrace.frames import INT64_MAX, INT64_MIN, hist_buckets, map_frame, split_keys
from bpfnb.engines.bpftrace.script import find_maps

SCRIPT = """k {
  @calls[comm] = count(); @s = sum(1); @a = avg(2); @ka[comm] = avg(4); @mn = min(3);
  @st = stats(5); @ks[comm] = stats(3); @ = count(); @pc[pid, comm] = count(); @str = comm;
  @h = hist(pid); @lh = lhist(args->id, 0, 100, 10); @kh[comm] = hist(args->id);
  @m3[pid, comm, 7] = sum(2); @sk[comm, "x,y"] = count(); @fd[args->fd] = count();
}"""
MAPS = find_maps(SCRIPT)


def frame(line: str) -> pd.DataFrame:
    record = json.loads(line)
    ((name, data),) = record["data"].items()
    return map_frame(record["type"], data, MAPS.get(name))


def test_maps_without_keys() -> None:
    assert frame('{"type": "map", "data": {"@": 221}}').to_dict("list") == {"count": [221]}
    assert frame('{"type": "map", "data": {"@s": 221}}').to_dict("list") == {"sum": [221]}
    assert frame('{"type": "stats", "data": {"@a": 2}}').to_dict("list") == {"avg": [2]}
    assert frame('{"type": "map", "data": {"@mn": 3}}').to_dict("list") == {"min": [3]}
    assert frame('{"type": "map", "data": {"@str": "sleep"}}').to_dict("list") == {"value": ["sleep"]}
    stats = frame('{"type": "stats", "data": {"@st": {"count": 221, "average": 5, "total": 1105}}}')
    assert stats.to_dict("list") == {"count": [221], "average": [5], "total": [1105]}


def test_keyed_counts_come_largest_first() -> None:
    df = frame('{"type": "map", "data": {"@calls": {"cut": 1, "pytest": 4, "python": 14607}}}')
    assert list(df.columns) == ["comm", "count"] and df["count"].dtype == np.int64
    assert df["comm"].tolist() == ["python", "pytest", "cut"]


def test_keyed_avg_and_stats_have_their_own_columns() -> None:
    assert frame('{"type": "stats", "data": {"@ka": {"x": 7}}}').to_dict("list") == {"comm": ["x"], "avg": [7]}
    df = frame('{"type": "stats", "data": {"@ks": {"a, b\\"c\\\\d": {"count": 3, "average": 3, "total": 9}}}}')
    assert df.to_dict("list") == {"comm": ['a, b"c\\d'], "count": [3], "average": [3], "total": [9]}


def test_a_two_part_key_with_a_comma_in_comm() -> None:
    df = frame('{"type": "map", "data": {"@pc": {"6888,sleep": 3, "7052,a, b\\"c\\\\d": 109}}}')
    assert df["pid"].tolist() == [7052, 6888] and df["pid"].dtype == np.int64
    assert df["comm"].tolist() == ['a, b"c\\d', "sleep"] and df.attrs["ambiguous_keys"] == 0


def test_a_three_part_key() -> None:
    df = frame('{"type": "map", "data": {"@m3": {"7052,a, b,7": 6}}}')
    assert list(df.columns) == ["pid", "comm", "key2", "sum"] and df.iloc[0].tolist() == [7052, "a, b", 7, 6]


def test_two_string_parts_are_ambiguous_only_with_commas() -> None:
    assert frame('{"type": "map", "data": {"@sk": {"a, b,x,y": 3, "sh,x,y": 1}}}').attrs["ambiguous_keys"] == 2
    clean = frame('{"type": "map", "data": {"@sk": {"sh,xy": 1}}}')
    assert clean.iloc[0].tolist() == ["sh", "xy", 1] and clean.attrs["ambiguous_keys"] == 0


def test_parts_of_unknown_type_are_told_by_the_keys_that_split_one_way() -> None:
    columns, ambiguous = split_keys(["1,a,b,2", "3,c,4", "5,d,6"], [None, None, None])
    assert columns == [["1", "3", "5"], ["a,b", "c", "d"], ["2", "4", "6"]] and ambiguous == 0


def test_an_integer_key_of_an_expression() -> None:
    df = frame('{"type": "map", "data": {"@fd": {"1000000": 1, "1000001": 2}}}')
    assert list(df.columns) == ["fd", "count"] and df["fd"].dtype == np.int64


def test_log2_bounds_with_the_negative_and_the_saturated_bucket() -> None:
    # bpftrace 0.17 for the values -1, 0, 1, 2**30 and three values >= 2**31.
    buckets = (
        [{"max": -1, "count": 1}, {"min": 0, "max": 0, "count": 1}, {"min": 1, "max": 1, "count": 1}]
        + [{"min": 1 << i, "max": (2 << i) - 1, "count": int(i == 30)} for i in range(1, 31)]
        + [{"min": -2147483648, "max": 0, "count": 3}]
    )
    slot, lo, hi, count = hist_buckets(buckets)
    assert slot.tolist() == list(range(-1, 33))
    assert (lo[0], hi[0]) == (INT64_MIN, -1)
    assert (lo[1], hi[1], lo[2], hi[2], lo[3], hi[3]) == (0, 0, 1, 1, 2, 3)
    assert (lo[-2], hi[-2]) == (1 << 30, (1 << 31) - 1)
    assert (lo[-1], hi[-1], count[-1]) == (1 << 31, INT64_MAX, 3)
    alone = hist_buckets([{"min": -2147483648, "max": 0, "count": 2}])
    assert [a.tolist() for a in alone[:3]] == [[32], [1 << 31], [INT64_MAX]]


def test_a_hist_is_a_bucket_frame_that_percentiles_read() -> None:
    df = frame(
        '{"type": "hist", "data": {"@h": [{"min": 4096, "max": 8191, "count": 221}, {"min": 8192, "max": 16383, "count": 1}]}}'
    )
    assert df.to_dict("list") == {"slot": [13, 14], "lo": [4096, 8192], "hi": [8191, 16383], "count": [221, 1]}
    assert percentiles(df, [50])[["lo", "hi", "total"]].iloc[0].tolist() == [4096, 8191, 222]


def test_lhist_slots_from_its_parameters_and_open_buckets() -> None:
    df = frame(
        '{"type": "hist", "data": {"@lh": [{"min": 0, "max": 9, "count": 88}, {"min": 10, "max": 19, "count": 18},'
        ' {"min": 90, "max": 99, "count": 0}, {"min": 100, "count": 113}]}}'
    )
    assert df["slot"].tolist() == [0, 1, 9, 10] and df["hi"].tolist() == [9, 19, 99, INT64_MAX]
    under = hist_buckets([{"max": -1, "count": 3}], linear=True, params=(0, 10, 5))
    assert [a[0] for a in under] == [-1, INT64_MIN, -1, 3]
    slot, lo, _, _ = hist_buckets(
        [{"max": 4, "count": 1}, {"min": 5, "max": 14, "count": 2}, {"min": 15, "max": 24, "count": 0}], linear=True
    )
    assert slot.tolist() == [-1, 0, 1] and lo.tolist()[1:] == [5, 15]


def test_a_keyed_hist_has_a_key_column_before_its_buckets() -> None:
    df = frame(
        '{"type": "hist", "data": {"@kh": {"sleep": [{"min": 0, "max": 0, "count": 6}, {"min": 1, "max": 1, "count": 0},'
        ' {"min": 2, "max": 3, "count": 40}], "bash": [{"min": 8, "max": 15, "count": 1}]}}}'
    )
    assert list(df.columns) == ["comm", "slot", "lo", "hi", "count"]
    assert df["comm"].tolist() == ["bash", "sleep", "sleep", "sleep"] and df["slot"].tolist() == [4, 0, 1, 2]
    assert percentiles(df, [50])["comm"].tolist() == ["bash", "sleep"]


def test_empty_maps_have_their_columns() -> None:
    assert list(map_frame("map", None, MAPS["@calls"]).columns) == ["comm", "count"]
    assert list(map_frame("hist", None, MAPS["@kh"]).columns) == ["comm", "slot", "lo", "hi", "count"]
    assert map_frame("hist", [], MAPS["@h"]).empty


@pytest.mark.parametrize(
    "line, columns",
    [
        ('{"type": "map", "data": {"@x": {"a": 1}}}', ["key", "value"]),
        ('{"type": "stats", "data": {"@x": {"a": 1}}}', ["key", "avg"]),
        ('{"type": "stats", "data": {"@x": {"count": 1, "average": 2, "total": 2}}}', ["count", "average", "total"]),
        ('{"type": "hist", "data": {"@x": [{"min": 100, "count": 1}]}}', ["slot", "lo", "hi", "count"]),
    ],
)
def test_a_map_the_script_does_not_show(line: str, columns: list[str]) -> None:
    assert list(frame(line).columns) == columns


def test_a_map_keyed_by_a_stack_has_it_folded_for_flame_graphs() -> None:
    info = find_maps("profile:hz:99 { @[kstack] = count(); }")["@"]
    data = {"\n    read_iter_zero+91\n    vfs_read+676\n    ksys_read+111\n": 5, "": 2}
    df = map_frame("map", data, info)
    assert list(df.columns) == ["kstack", "folded", "count"]
    assert df["folded"].tolist() == ["ksys_read;vfs_read;read_iter_zero", "[no stack]"]
    assert bpfnb.plot.flame(df) is not None
