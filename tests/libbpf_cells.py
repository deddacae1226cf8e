"""What the libbpf engine's tests share: the includes of a CO-RE cell, compiling like the magic does, and a cell whose
types exercise every layout rule.

The XDP program ``fill`` of :data:`LAYOUT_CELL` writes known values into every field of ``struct all`` (and ``struct
overlapping``) in array maps; decoding those maps with the types built from BTF must give the values back. It is the
layout check that does not trust BTF: clang's code generator puts the values where C says they go.
"""

from __future__ import annotations

from bpfnb.engines.libbpf.compiler import CompiledObject, compile_object

#: The includes every libbpf-style cell starts with.
HEADER = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
"""
LICENSE = '\nchar LICENSE[] SEC("license") = "GPL";\n'


def compile_cell(body: str, *, with_header: bool = True) -> CompiledObject:
    """Compile a cell the way the magic does: its code starts on cell line 2."""
    return compile_object((HEADER if with_header else "") + body, first_line=2)


def header_lines() -> int:
    """How many cell lines the standard includes take (they start on line 2)."""
    return HEADER.count("\n")


def cell_line(body: str, code: str) -> int:
    """The cell line of the line ``code`` of ``body`` in ``%%bpf`` + :data:`HEADER` + ``body``."""
    return 2 + header_lines() + body.splitlines().index(code)


LAYOUT_TYPES = r"""
enum color { RED = 1, GREEN = 2, BLUE = 40 };
enum wide { WIDE_SMALL = 1, WIDE_BIG = 0x1ffffffffULL };
struct inner { u16 a; u8 b; };
struct bits {
    u32 x:3;
    s32 y:5;
    u32 z:24;
    u8 w:2;
    u64 big:40;
    enum color c:8;
};
struct __attribute__((packed)) packed { u8 a; u32 b; u16 c; };
struct __attribute__((packed)) overlapping { u8 a; u32 b:20; u32 c:20; u8 d; };
union number { u32 i; float f; u8 bytes[4]; };
struct all {
    u8 small;
    u64 large;
    struct inner in;
    struct inner arr[3];
    u32 matrix[2][3];
    char name[8];
    enum color color;
    enum wide wide;
    struct bits bits;
    struct packed packed;
    union number number;
    struct { u32 anon_a; u32 anon_b; };
    s8 neg;
    bool flag;
    void *ptr;
    float fl;
    double db;
    u8 tail;
};
"""

LAYOUT_CELL = LAYOUT_TYPES + r"""
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, struct all); } alls SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
         __type(key, u32); __type(value, struct overlapping); } overlaps SEC(".maps");

SEC("xdp")
int fill(struct xdp_md *ctx)
{
    u32 k = 0;
    struct all *v = bpf_map_lookup_elem(&alls, &k);
    if (!v)
        return XDP_PASS;
    v->small = 0xab;
    v->large = 0x1122334455667788ULL;
    v->in.a = 0xbeef; v->in.b = 7;
    for (int i = 0; i < 3; i++) { v->arr[i].a = 100 + i; v->arr[i].b = i; }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            v->matrix[i][j] = 10 * i + j;
    __builtin_memcpy(v->name, "bpfnb\0\0", 8);
    v->color = BLUE;
    v->wide = WIDE_BIG;
    v->bits.x = 5; v->bits.y = -7; v->bits.z = 0xabcdef; v->bits.w = 3;
    v->bits.big = 0xfedcba9876ULL; v->bits.c = GREEN;
    v->packed.a = 1; v->packed.b = 0xdeadbeef; v->packed.c = 0x4242;
    v->number.i = 0x3fc00000;  /* 1.5f */
    v->anon_a = 11; v->anon_b = 12;
    v->neg = -5;
    v->flag = 1;
    v->ptr = (void *)0xffff888812345678ULL;
    *(u32 *)&v->fl = 0x40490fdb;                /* 3.1415927f */
    *(u64 *)&v->db = 0x4005bf0a8b145769ULL;     /* 2.718281828459045 */
    v->tail = 0xee;

    struct overlapping *o = bpf_map_lookup_elem(&overlaps, &k);
    if (o) { o->a = 1; o->b = 0x12345; o->c = 0xabcde; o->d = 9; }
    return XDP_PASS;
}
char LICENSE[] SEC("license") = "GPL";
"""

#: Global variables of every kind next to an mmapable array.
GLOBALS_CELL = """
u64 calls = 0;
u32 offset = 100;
const volatile u32 step = 7;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
         __uint(map_flags, BPF_F_MMAPABLE);
         __type(key, u32); __type(value, u64); } shared SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int count_calls(void *ctx)
{
    u32 zero = 0;
    if ((bpf_get_current_pid_tgid() >> 32) != offset)
        return 0;
    calls++;
    u64 *slot = bpf_map_lookup_elem(&shared, &zero);
    if (slot)
        *slot += step;
    return 0;
}
""" + LICENSE

#: The issue's example cell, exactly as a user types it under ``%%bpf forks``.
FORK_CELL = """#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
struct info { u32 ppid; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240);
         __type(key, u32); __type(value, struct info); } seen SEC(".maps");
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child) {
    u32 pid = BPF_CORE_READ(child, tgid);
    struct info i = { .ppid = BPF_CORE_READ(parent, tgid) };
    bpf_probe_read_kernel_str(i.comm, sizeof(i.comm), parent->comm);
    bpf_map_update_elem(&seen, &pid, &i, BPF_ANY);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

#: getppid() calls counted per process, in a hash map.
COUNTER_CELL = HEADER + """struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024);
         __type(key, u32); __type(value, u64); } counts SEC(".maps");
SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *count = bpf_map_lookup_elem(&counts, &pid);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, BPF_ANY);
    return 0;
}
""" + LICENSE
