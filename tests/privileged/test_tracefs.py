"""Listing probes from the running kernel's tracefs, and reading a tracepoint at the parsed offsets."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import uuid

import pytest

import bpfnb
from bpfnb.errors import PrivilegeError
from bpfnb.kernel.tracefs import Tracepoint, kprobe_functions, tracefs_root, tracepoint, tracepoints, uprobe_symbols
from bpfnb.tools.probe_listing import ProbeList, probes


def test_tracepoints_match_the_events_directory() -> None:
    names = tracepoints("sched:*")
    on_disk = sorted(
        f"sched:{event}"
        for event in os.listdir(os.path.join(tracefs_root(), "events", "sched"))
        if os.path.exists(os.path.join(tracefs_root(), "events", "sched", event, "format"))
    )
    assert names == on_disk
    assert "sched:sched_switch" in names
    assert tracepoints("tracepoint:sched:sched_switch") == ["sched:sched_switch"]
    assert "syscalls:sys_enter_openat" in tracepoints("sys_enter_open*")


def test_one_tracepoint_lists_its_fields_like_bpftrace_lv() -> None:
    tp = probes("syscalls:sys_enter_openat")
    assert isinstance(tp, Tracepoint)
    assert repr(tp).splitlines() == [
        "tracepoint:syscalls:sys_enter_openat",
        "    int __syscall_nr",
        "    int dfd",
        "    const char * filename",
        "    int flags",
        "    umode_t mode",
    ]
    assert [(f.name, f.offset, f.size) for f in tp.common_fields][0] == ("common_type", 0, 2)
    assert "args-&gt;" in tp._repr_html_() and "TRACEPOINT_PROBE(syscalls, sys_enter_openat)" in tp._repr_html_()
    with pytest.raises(ValueError, match="no tracepoint"):
        tracepoint("sched:no_such_event")


READER = r"""
struct path_t { char s[64]; };
BPF_HASH(paths, struct path_t, u64);

int on_openat(void *ctx) {
    const char *filename = 0;
    struct path_t path = {};
    bpf_probe_read_kernel(&filename, sizeof(filename), ctx + FILENAME_OFFSET);
    bpf_probe_read_user_str(path.s, sizeof(path.s), filename);
    paths.increment(path);
    return 0;
}
"""


def test_parsed_offset_reads_the_real_argument(no_leaks) -> None:
    """A raw tracepoint program reads ``filename`` at the offset parsed from the format file."""
    field = next(f for f in tracepoint("syscalls:sys_enter_openat").fields if f.name == "filename")
    with bpfnb.Program(READER, attach=False, cflags=[f"-DFILENAME_OFFSET={field.offset}"]) as prog:
        prog.bpf.attach_tracepoint(tp=b"syscalls:sys_enter_openat", fn_name=b"on_openat")
        path = f"/tmp/bpfnb-tracefs-{uuid.uuid4().hex}"
        child = subprocess.run(["cat", path], capture_output=True)
        assert child.returncode != 0
        opened = {bytes(key.s).split(b"\0")[0].decode() for key in prog.bpf[b"paths"].keys()}
    assert path in opened


def test_kprobe_targets_or_why_not() -> None:
    try:
        with open(os.path.join(tracefs_root(), "available_filter_functions")) as f:
            readable = bool(f.readline())
    except OSError:
        readable = False
    if readable:
        assert "vfs_read" in kprobe_functions("vfs_*")
        return
    # This kernel (lockdown) refuses the list even to root: say so instead of an empty list.
    with pytest.raises(PrivilegeError, match="does not list its kprobe targets"):
        kprobe_functions("vfs_*")
    listed = probes("kprobe:vfs_*")
    assert isinstance(listed, ProbeList) and len(listed) == 0 and "lockdown" in listed.remark.lower()


def test_uprobe_symbols_of_libc_match_its_elf_symbol_table() -> None:
    libc = ctypes.util.find_library("c")
    assert libc
    symbols = dict(uprobe_symbols("c", "malloc*"))
    assert {"malloc", "malloc_usable_size"} <= set(symbols)
    assert all(name.startswith("malloc") for name in symbols)
    listed = probes("uprobe:c:malloc")
    assert list(listed) == ["c:malloc"]
    # The address is the symbol's value in the ELF file, as readelf reports it.
    path = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    libc_path = next(line.split("=> ")[1] for line in path.splitlines() if line.strip().startswith("libc.so.6") and "x86-64" in line)
    readelf = subprocess.run(["readelf", "-Ws", "--dyn-syms", libc_path], capture_output=True, text=True).stdout
    values = {int(cols[1], 16) for cols in (line.split() for line in readelf.splitlines()) if len(cols) >= 8 and cols[7].split("@")[0] == "malloc"}
    assert symbols["malloc"] in values


def test_completion_reads_the_real_tracefs() -> None:
    from bpfnb.notebook.completion import complete

    assert "sched_switch" in complete("TRACEPOINT_PROBE(sched, sched_sw").matches
    cell = "TRACEPOINT_PROBE(syscalls, sys_enter_openat) { return args->fi"
    assert complete(cell).matches == ("filename",)
