"""BCC cells are never silently wrong: kernel struct reads are checked against the running kernel's BTF."""

from __future__ import annotations

import os

import pytest

import bpfnb
from bpfnb.kernel.environment import find_kernel_headers

MISMATCHED = not find_kernel_headers().matches
needs_other_headers = pytest.mark.skipif(
    not MISMATCHED, reason="the installed headers are the running kernel's own: no layout can differ"
)

READS_TASK = """#include <linux/sched.h>
BPF_HASH(out, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 k = 0; u64 v = t->tgid;
    out.update(&k, &v);
    u32 k2 = 1; u64 v2 = t->real_parent->tgid;
    out.update(&k2, &v2);
    return 0;
}
"""

HELPERS_ONLY = """
BPF_HASH(out, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct task_struct *t = (struct task_struct *)bpf_get_current_task();
    u32 k = 0; u64 v = bpf_get_current_pid_tgid() >> 32;
    out.update(&k, &v);
    return 0;
}
"""


@needs_other_headers
def test_a_read_the_headers_place_elsewhere_is_refused_at_its_line(no_leaks):
    with pytest.raises(bpfnb.LayoutError) as caught:
        bpfnb.Program(READS_TASK, first_line=2)
    error = caught.value
    assert error.line == 6
    assert "struct task_struct.tgid" in error.message and "running kernel" in error.message
    assert "line 8: struct task_struct.real_parent" in error.details
    assert "BPF_CORE_READ" in error.hint and "--trust-headers" in error.hint


@needs_other_headers
def test_trusting_the_headers_loads_it_and_shows_why_it_was_refused(no_leaks):
    with bpfnb.Program(READS_TASK, trust_headers=True) as prog:
        os.getppid()
        read = prog["out"][0]
    assert read != os.getpid()  # the headers' offset reads other bytes of task_struct


def test_a_cell_that_reads_no_kernel_struct_loads_without_a_word(no_leaks, capsys):
    with bpfnb.Program(HELPERS_ONLY) as prog:
        os.getppid()
        assert prog["out"][0] == os.getpid()
    assert capsys.readouterr() == ("", "")
