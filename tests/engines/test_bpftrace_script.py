"""A bpftrace script's maps and probes found in its text, and the script bpfnb runs (pure)."""

from __future__ import annotations

import pytest

from bpfnb.engines.bpftrace.prepared import prepare
from bpfnb.engines.bpftrace.script import find_maps, find_probes, key_column_names
from bpfnb.engines.hooks import Probe
from bpfnb.errors import ArgumentError

#: The issue's example.
USER_GOAL = """\
tracepoint:raw_syscalls:sys_enter { @calls[comm] = count(); @lat_start[tid] = nsecs; }
tracepoint:raw_syscalls:sys_exit /@lat_start[tid]/ { @usecs = hist((nsecs - @lat_start[tid]) / 1000); delete(@lat_start[tid]); }
tracepoint:sched:sched_process_exec { printf("exec pid=%d comm=%s\\n", pid, comm); }"""


def test_user_goal_maps() -> None:
    maps = find_maps(USER_GOAL)
    assert list(maps) == ["@calls", "@lat_start", "@usecs"]
    assert maps["@calls"].function == "count" and maps["@calls"].keys == ("comm",)
    assert maps["@lat_start"].function == "value" and maps["@lat_start"].keys == ("tid",)
    assert maps["@usecs"].function == "hist" and maps["@usecs"].keys == () and maps["@usecs"].line == 2


@pytest.mark.parametrize(
    "text, name, function",
    [
        ("k { @ = count(); }", "@", "count"),
        ("k { @s = sum(arg0); }", "@s", "sum"),
        ("k { @a[pid] = avg(1); }", "@a", "avg"),
        ("k { @m = min(1); @x = max(2); }", "@x", "max"),
        ("k { @st = stats(3); }", "@st", "stats"),
        ("k { @i++; }", "@i", "value"),
        ("k { @i += 2; }", "@i", "value"),
        ("k { @t[tid] = nsecs; }", "@t", "value"),
    ],
)
def test_what_fills_a_map(text: str, name: str, function: str) -> None:
    assert find_maps(text)[name].function == function


def test_comments_strings_and_reads_are_not_assignments() -> None:
    text = """
    // @commented = count();
    /* @block = count(); */
    k /@seen[tid] == 1/ { printf("@fake = count()\\n"); print(@real); delete(@seen[tid]); }
    k { @real = count(); @seen[tid] = 1; }
    """
    assert list(find_maps(text)) == ["@real", "@seen"]


def test_an_aggregate_wins_over_an_earlier_plain_assignment() -> None:
    maps = find_maps("k { @x = 0; } j { @x = count(); }")
    assert maps["@x"].function == "count" and maps["@x"].line == 1


def test_multi_part_keys_keep_their_string_literals() -> None:
    info = find_maps('k { @m[pid, comm, "a,b", args->fd, str(args->filename)] = sum(1); }')["@m"]
    assert info.keys == ("pid", "comm", '"a,b"', "args->fd", "str(args->filename)")
    assert info.key_types == ("int", "str", "str", None, "str")
    assert key_column_names(info.keys, ("sum",)) == ["pid", "comm", "key2", "fd", "filename"]


def test_key_column_names_never_repeat() -> None:
    assert key_column_names(("pid", "pid", "$count"), ("count",)) == ["pid", "pid_1", "count_1"]
    assert key_column_names(("a + b",)) == ["key"]


def test_lhist_parameters_when_literal() -> None:
    assert find_maps("k { @l = lhist(arg0, 0, 0x64, 10); }")["@l"].lhist == (0, 100, 10)
    assert find_maps("k { @l = lhist(arg0, $lo, 100, 10); }")["@l"].lhist is None


def test_probes_as_written_with_their_offsets() -> None:
    source = (
        "#include <linux/sched.h>\nstruct x { int a; };\n"
        "tracepoint:raw_syscalls:sys_enter, t:sched:* /pid == 1/ { @c = count(); }\n"
        'uprobe:/bin/sh:main{ printf("{"); }\nBEGIN { }'
    )
    probes = find_probes(source)
    assert [p.spec for p in probes] == ["tracepoint:raw_syscalls:sys_enter", "t:sched:*", "uprobe:/bin/sh:main", "BEGIN"]
    assert all(source[p.offset :].startswith(p.spec) for p in probes)
    assert [p.provider for p in probes] == ["tracepoint", "tracepoint", "uprobe", "BEGIN"]
    assert find_probes("nope:x { }")[0].provider is None
    assert probes[0].hook() == Probe("bpftrace", "tracepoint:raw_syscalls:sys_enter", "tracepoint:raw_syscalls:sys_enter")


def test_the_printing_probe_comes_after_the_users_lines() -> None:
    prepared = prepare(USER_GOAL, interval_ms=250, first_line=2)
    lines = prepared.text.splitlines()
    assert lines[:3] == USER_GOAL.splitlines()
    prints = "print(@calls); print(@lat_start); print(@usecs);"
    assert lines[-1] == f'interval:ms:250 {{ {prints} printf("{prepared.marker}\\n"); }}'
    assert prepared.printed == ("@calls", "@lat_start", "@usecs")
    # In a cell, line 1 is the %%bpftrace line: script line 1 is cell line 2.
    assert prepared.cell_line(1) == 2 and prepared.cell_line(3) == 4 and prepared.cell_line(len(lines)) is None
    assert prepared.marker != prepare(USER_GOAL).marker


def test_a_source_ending_in_a_comment_still_gets_its_probe() -> None:
    assert prepare("k { @c = count(); } // no newline").text.splitlines()[1].startswith("interval:ms:1000 {")


def test_without_maps_or_interval_the_text_is_left_alone() -> None:
    text = 'tracepoint:sched:sched_process_exec { printf("%s\\n", comm); }'
    assert prepare(text).text == text and prepare(text).interval_ms == 0
    assert prepare("k { @c = count(); }", interval_ms=0).text == "k { @c = count(); }"
    with pytest.raises(ArgumentError, match="milliseconds"):
        prepare(text, interval_ms=-1)
