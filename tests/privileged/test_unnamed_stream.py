"""``prog.stream()`` without a name: a BCC program's only buffer, and a clear error when it has none or several."""

from __future__ import annotations

import ctypes
import os

import pytest

import bpfnb
from bpfnb.streams.stream import Stream

ONE_BUFFER = """
BPF_RINGBUF_OUTPUT(events, 8);
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    events.ringbuf_output(&pid, sizeof(pid), 0);
    return 0;
}
"""


def test_the_only_buffer_is_streamed(no_leaks: None) -> None:
    with bpfnb.Program(ONE_BUFFER) as program:
        stream = program.stream(event_type=ctypes.c_uint32)
        assert isinstance(stream, Stream) and stream.name == "events"
        os.getppid()
        assert os.getpid() in stream.wait(n=1, seconds=10).df()["value"].tolist()


def test_no_buffer_or_several_ask_for_a_name(no_leaks: None) -> None:
    with bpfnb.Program("BPF_HASH(counts, u32, u64);\nint f(void *ctx) { return 0; }", attach=False) as none:
        with pytest.raises(bpfnb.ArgumentError, match="has no ring or perf buffer"):
            none.stream()
    two = "BPF_RINGBUF_OUTPUT(a, 8);\nBPF_PERF_OUTPUT(b);\nint f(void *ctx) { return 0; }"
    with bpfnb.Program(two, attach=False) as program:
        with pytest.raises(bpfnb.ArgumentError, match=r"2 ring or perf buffers \(a, b\)"):
            program.stream()
