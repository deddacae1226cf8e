"""LibbpfObject with real loads: maps ready for fd readers, global variables, exact layouts, partial loads,
all-or-nothing attachment and closing."""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bpfnb import AttachError, BpfnbError, LoadError
from bpfnb.engines.libbpf.loader import LibbpfObject
from bpfnb.kernel.libbpf import map_elem, num_possible_cpus, prog_test_run

from ..libbpf_cells import GLOBALS_CELL, LAYOUT_CELL, LICENSE, compile_cell
from .conftest import kernel_prog_ids, own_bpf_objects


def lookup(fd: int, key: Any, value_type: type | None) -> Any:
    """One element of the map behind ``fd``, as a ``value_type`` instance; None if absent."""
    assert value_type is not None
    value = value_type()
    found = map_elem("lookup_elem", fd, ctypes.addressof(key), ctypes.addressof(value))
    return value if found else None


def update(fd: int, key: Any, value: Any) -> None:
    map_elem("update_elem", fd, ctypes.addressof(key), ctypes.addressof(value), 0)


@pytest.fixture
def opened(no_leaks: None) -> Iterator[list[LibbpfObject]]:
    """Objects a test opens; closed after it (before the leak check)."""
    objects: list[LibbpfObject] = []
    yield objects
    for obj in objects:
        obj.close()


def running(opened: list[LibbpfObject], body: str, name: str, *, attach: bool = True) -> LibbpfObject:
    obj = LibbpfObject.open(compile_cell(body).data, name)
    opened.append(obj)
    obj.load()
    if attach:
        obj.attach_all()
    return obj


def fdinfo(fd: int) -> dict[str, str]:
    with open(f"/proc/self/fdinfo/{fd}") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


EVENTS_CELL = """
struct event { u32 pid; u32 magic; };
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 64 * 1024); } ring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
         __uint(key_size, sizeof(u32)); __uint(value_size, sizeof(u32)); } perf SEC(".maps");
const volatile u32 target_pid = 0;
SEC("tracepoint/syscalls/sys_enter_getppid")
int emit(void *ctx)
{
    struct event e = { .pid = bpf_get_current_pid_tgid() >> 32, .magic = 0xb0f0b0f0 };
    if (e.pid != target_pid)
        return 0;
    bpf_ringbuf_output(&ring, &e, sizeof(e), 0);
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &e, sizeof(e));
    return 0;
}
""" + LICENSE


def test_ring_buffer_and_perf_array_maps_are_ready_for_an_fd_reader(opened: list[LibbpfObject]) -> None:
    obj = LibbpfObject.open(compile_cell(EVENTS_CELL).data, "events")
    opened.append(obj)
    rodata = obj.maps["events.rodata"]
    # Before load, .rodata can still be given its initial value.
    assert rodata.value_type is not None
    assert [name for name, *_ in getattr(rodata.value_type, "_fields_")] == ["target_pid"]
    obj.set_initial_value("events.rodata", rodata.value_type(target_pid=os.getpid()))
    obj.load()
    with pytest.raises(BpfnbError, match="initial value"):
        obj.set_initial_value("events.rodata", rodata.value_type(target_pid=1))
    assert obj.attach_all() == ["emit"]
    ring, perf = obj.maps["ring"], obj.maps["perf"]
    assert (ring.type_name, ring.key_size, ring.value_size, ring.max_entries) == ("ringbuf", 0, 0, 65536)
    assert ring.key_type is None and ring.value_type is None
    assert fdinfo(ring.fd)["map_type"] == "27"
    assert (perf.type_name, perf.key_size, perf.value_size) == ("perf_event_array", 4, 4)
    assert perf.key_type is ctypes.c_uint32  # an index, though declared without BTF
    # libbpf sizes a perf event array to the number of possible CPUs.
    assert perf.max_entries == num_possible_cpus()
    assert fdinfo(perf.fd)["map_type"] == "4"

    os.getppid()
    page = mmap.PAGESIZE
    consumer = mmap.mmap(ring.fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
    producer = mmap.mmap(ring.fd, page + 2 * ring.max_entries, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    try:
        (consumed,) = struct.unpack_from("<Q", consumer, 0)
        (produced,) = struct.unpack_from("<Q", producer, 0)
        assert produced - consumed == 16  # one 8-byte header + the 8-byte event
        start = page + consumed % ring.max_entries
        length, _page_offset = struct.unpack_from("<II", producer, start)
        pid, magic = struct.unpack_from("<II", producer, start + 8)
        assert (length, pid, magic) == (8, os.getpid(), 0xB0F0B0F0)
    finally:
        consumer.close()
        producer.close()


@pytest.mark.parametrize(("object_name", "prefix"), [("globals", "globals"), ("cell_number_12", "cell_num")])
def test_global_variables_and_mmapable_arrays(opened: list[LibbpfObject], object_name: str, prefix: str) -> None:
    obj = running(opened, GLOBALS_CELL, object_name, attach=False)
    maps = obj.maps
    data, bss, rodata = (maps[f"{prefix}.{section}"] for section in ("data", "bss", "rodata"))
    assert data.key_type is ctypes.c_uint32 and data.value_type is not None
    # Globals are writable from Python through their map: aim the filter at this process.
    update(data.fd, ctypes.c_uint32(0), data.value_type(offset=os.getpid()))
    obj.attach_all()
    for _ in range(3):
        os.getppid()
    assert lookup(bss.fd, ctypes.c_uint32(0), bss.value_type).calls == 3
    assert lookup(rodata.fd, ctypes.c_uint32(0), rodata.value_type).step == 7
    assert rodata.map_flags & 0x80  # BPF_F_RDONLY_PROG
    shared = maps["shared"]
    assert shared.map_flags & 1024  # BPF_F_MMAPABLE
    view = mmap.mmap(shared.fd, mmap.PAGESIZE, mmap.MAP_SHARED, mmap.PROT_READ)
    try:
        assert struct.unpack_from("<4Q", view) == (21, 0, 0, 0)
    finally:
        view.close()


def test_layout_values_written_by_bpf_read_back_exactly(opened: list[LibbpfObject]) -> None:
    obj = running(opened, LAYOUT_CELL, "layouts", attach=False)
    retval, *_ = prog_test_run(obj.program_fd("fill"), bytes(64))
    assert retval == 2  # XDP_PASS
    alls, overlaps = obj.maps["alls"], obj.maps["overlaps"]
    v = lookup(alls.fd, ctypes.c_uint32(0), alls.value_type)
    o = lookup(overlaps.fd, ctypes.c_uint32(0), overlaps.value_type)
    assert (v.small, v.large) == (0xAB, 0x1122334455667788)
    inner = getattr(v, "in")
    assert (inner.a, inner.b) == (0xBEEF, 7)
    assert [(e.a, e.b) for e in v.arr] == [(100, 0), (101, 1), (102, 2)]
    assert [list(row) for row in v.matrix] == [[0, 1, 2], [10, 11, 12]]
    assert v.name == b"bpfnb"
    assert getattr(alls.value_type, "_bpfnb_enums_")["color"][v.color] == "BLUE"
    assert v.wide == 0x1FFFFFFFF
    bits = v.bits
    assert (bits.x, bits.y, bits.z, bits.w, bits.big, bits.c) == (5, -7, 0xABCDEF, 3, 0xFEDCBA9876, 2)
    assert (v.packed.a, v.packed.b, v.packed.c) == (1, 0xDEADBEEF, 0x4242)
    assert v.number.f == 1.5
    assert (v.anon_a, v.anon_b, v.neg, v.flag) == (11, 12, -5, True)
    assert v.ptr == 0xFFFF888812345678
    assert v.fl == pytest.approx(3.1415927) and v.db == pytest.approx(2.718281828459045)
    assert v.tail == 0xEE
    # The inexpressible bit-fields are absent, their neighbours still right.
    assert (o.a, o.d) == (1, 9)


GETPPID_CELL = """
SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx) { return 0; }
"""


def test_programs_can_be_left_unloaded_or_unattached(opened: list[LibbpfObject]) -> None:
    body = GETPPID_CELL + """
SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx) { return 0; }
SEC("tracepoint/nope/nope")
int never_loaded(void *ctx) { return 0; }
""" + LICENSE
    obj = LibbpfObject.open(compile_cell(body).data, "choose")
    opened.append(obj)
    obj.set_autoload("never_loaded", False)
    obj.set_autoattach("on_getpid", False)
    obj.load()
    assert obj.attach_all() == ["on_getppid"]
    assert obj.attach_all() == []  # attached already
    programs = obj.programs
    assert programs["never_loaded"].fd == -1
    assert programs["on_getpid"].fd >= 0 and not programs["on_getpid"].attached
    assert programs["on_getppid"].attached
    with pytest.raises(BpfnbError):
        obj.set_autoload("on_getpid", False)
    obj.detach_all()
    assert not any(p.attached for p in obj.programs.values())


HALF_ATTACHABLE = """
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64);
         __type(key, u32); __type(value, u32); } forks SEC(".maps");
SEC("tp_btf/sched_process_fork")
int BPF_PROG(first_ok, struct task_struct *parent, struct task_struct *child)
{
    u32 pid = BPF_CORE_READ(child, tgid), one = 1;
    bpf_map_update_elem(&forks, &pid, &one, BPF_ANY);
    return 0;
}
SEC("tracepoint/nope/nope")
int second_bad(void *ctx) { return 0; }
""" + LICENSE


def test_attach_is_all_or_nothing(opened: list[LibbpfObject]) -> None:
    obj = running(opened, HALF_ATTACHABLE, "halfatt", attach=False)
    loaded = own_bpf_objects()
    with pytest.raises(AttachError, match="nope/nope"):
        obj.attach_all()
    # The first program's link was destroyed: no new BPF fd, nothing attached.
    assert own_bpf_objects() == loaded
    assert not any(p.attached for p in obj.programs.values())
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    forks = obj.maps["forks"]
    assert lookup(forks.fd, ctypes.c_uint32(pid), forks.value_type) is None


def test_close_and_a_failed_load_leave_nothing(no_leaks: None) -> None:
    before = own_bpf_objects()
    body = HALF_ATTACHABLE.split('SEC("tracepoint/nope/nope")')[0] + LICENSE
    obj = LibbpfObject.open(compile_cell(body).data, "closecheck")
    obj.load()
    assert obj.attach_all() == ["first_ok"]
    held = own_bpf_objects()
    assert (held["prog"], held["link"]) == (before["prog"] + 1, before["link"] + 1)
    prog_id = int(fdinfo(obj.program_fd("first_ok"))["prog_id"])
    assert prog_id in kernel_prog_ids()  # bpftool lists it
    obj.close()
    assert own_bpf_objects() == before
    deadline = time.monotonic() + 5  # freed after an RCU grace period
    while prog_id in kernel_prog_ids() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert prog_id not in kernel_prog_ids()
    obj.close()  # idempotent
    assert obj.closed

    # The map lookup's result is used unchecked: the verifier refuses it, after the map was made.
    unchecked = body.replace("bpf_map_update_elem(&forks, &pid, &one, BPF_ANY);", "*(u32 *)bpf_map_lookup_elem(&forks, &pid) = one;")
    broken = LibbpfObject.open(compile_cell(unchecked).data, "broken")
    try:
        with pytest.raises(LoadError, match="verifier rejected program 'first_ok'"):
            broken.load()
    finally:
        broken.close()
    assert own_bpf_objects() == before
