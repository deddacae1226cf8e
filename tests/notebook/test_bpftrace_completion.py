"""Completions in %%bpftrace cells; tracefs is replaced by fixed names so the tests run without root."""

from __future__ import annotations

import functools

import pytest

from bpfnb.notebook.bpftrace_completion import complete_bpftrace

TRACEPOINTS = ("sched:sched_switch", "sched:sched_process_exec", "syscalls:sys_enter_read", "syscalls:sys_exit_read")
FIELDS = {"sched:sched_process_exec": ["filename", "pid", "old_pid"], "syscalls:sys_enter_read": ["fd", "buf", "count"]}

fake = functools.partial(
    complete_bpftrace,
    tracepoint_names=lambda: TRACEPOINTS,
    tracepoint_fields=lambda name: FIELDS.get(name, []),
)


@pytest.mark.parametrize(
    "cell, matches, kind",
    [
        ("tr", ("tracepoint:",), "probe type"),
        ("BEGIN { } E", ("END",), "probe type"),
        ("tracepoint:sc", ("sched",), "tracepoint category"),
        ("tracepoint:sched:sched_s", ("sched_switch",), "tracepoint"),
        ("t:syscalls:sys_e", ("sys_enter_read", "sys_exit_read"), "tracepoint"),
        ("software:cpu-c", ("cpu-clock",), "software event"),
        ("hardware:cache-m", ("cache-misses",), "hardware event"),
        ("profile:h", ("hz",), "unit"),
        ("kprobe:vfs_re", (), ""),
        ("k { pri", ("print", "printf"), "name"),
        ("k { @x = ks", ("kstack", "ksym"), "name"),
        ("k { @x[co", ("comm", "count"), "name"),
        ("k { @calls[comm] = count(); } j { @ca", ("@calls",), "map"),
        ("tracepoint:syscalls:sys_enter_read { @[args->c", ("count",), "tracepoint field"),
        ("tracepoint:sched:sched_switch { } t:sched:sched_process_exec /args->pid/ { @[args->", ("filename", "old_pid", "pid"), "tracepoint field"),
        ("t:sched:* { @[args->", (), ""),
        ('k { printf("pri', (), ""),
        ("// tra", (), ""),
    ],
)
def test_what_completes(cell: str, matches: tuple[str, ...], kind: str) -> None:
    found = fake(cell)
    assert (found.matches, found.kind) == (matches, kind)
    assert found.end == len(cell)


def test_the_completed_fragment_starts_where_the_word_does() -> None:
    found = fake("tracepoint:sched:sched_s")
    assert "tracepoint:sched:sched_s"[found.start :] == "sched_s"
    assert fake("k { pri", 5).matches == ("path", "pid", "print", "printf", "probe", "pton")  # the cursor mid-word
