"""Finding the kernel struct fields a BCC cell reads, resolved in the running kernel's BTF (no root)."""

from __future__ import annotations

import pytest

from bpfnb.decode.btf import Btf
from bpfnb.engines.bcc.layouts import struct_reads
from bpfnb.kernel.environment import KERNEL_BTF

pytestmark = pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel has no BTF")


@pytest.fixture(scope="module")
def kernel() -> Btf:
    return Btf.from_file(KERNEL_BTF)


def offset(kernel: Btf, struct: str, member: str) -> int:
    record = kernel.type(kernel.find(struct)[0])
    return next(m.bit_offset for m in record.members if m.name == member) // 8


def test_pointer_chains_are_one_read_per_hop(kernel):
    source = (
        "int f(void *ctx) {\n"
        "    struct task_struct *t = (struct task_struct *)bpf_get_current_task();\n"
        "    return t->real_parent->tgid;\n"
        "}\n"
    )
    reads = struct_reads(source, kernel, first_line=2)
    assert [(r.line, r.record, r.path) for r in reads] == [
        (4, "struct task_struct", "real_parent"),
        (4, "struct task_struct", "tgid"),
    ]
    assert reads[1].kernel_offset == offset(kernel, "task_struct", "tgid")
    assert (reads[0].kernel_size, reads[1].kernel_size) == (8, 4)


def test_casts_nested_members_and_comments(kernel):
    source = (
        "u64 x = ((struct task_struct *)bpf_get_current_task())->se.vruntime;\n"
        "// struct task_struct *c; c->pid is only a comment\n"
    )
    reads = struct_reads(source, kernel)
    assert [(r.record, r.path) for r in reads] == [("struct task_struct", "se.vruntime")]
    se = offset(kernel, "task_struct", "se")
    assert reads[0].kernel_offset == se + offset(kernel, "sched_entity", "vruntime")


def test_tracepoint_args_and_the_cells_own_structs_are_not_kernel_reads(kernel):
    source = (
        "struct key_t { u32 pid; };\n"
        "TRACEPOINT_PROBE(sched, sched_switch) { struct key_t *k = 0; return args->prev_pid + k->pid; }\n"
    )
    assert struct_reads(source, kernel) == []
