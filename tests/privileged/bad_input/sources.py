"""C sources and cell builders shared by the bad-input cases.

Everything here is plain text: the cases feed it to ``%%bpf`` cells or to
``bpfnb.Program``. Builders that need the machine (the list of syscall
tracepoints) run inside the case's own process.
"""

from __future__ import annotations

import os

#: A working counter: one hash entry per process calling getppid().
COUNTER = """\
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""

#: The same program with a typo on its line 3 (cell line 4): `pidd`.
COUNTER_TYPO = COUNTER.replace("counts.increment(pid)", "counts.increment(pidd)")

#: A perf buffer and a ring buffer fed on every getppid().
BUFFERS = """\
struct event { u32 pid; u64 ts; };
BPF_PERF_OUTPUT(perf_events);
BPF_RINGBUF_OUTPUT(ring_events, 8);
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct event e = {};
    e.pid = bpf_get_current_pid_tgid() >> 32;
    e.ts = bpf_ktime_get_ns();
    perf_events.perf_submit(args, &e, sizeof(e));
    ring_events.ringbuf_output(&e, sizeof(e), 0);
    counts.increment(e.pid);
    return 0;
}
"""

#: A queue (or stack, with QUEUE -> STACK) pushed on every system call of every process.
BUSY_QUEUE = """\
BPF_QUEUE(q, u64, 1024);
TRACEPOINT_PROBE(raw_syscalls, sys_enter) {
    u64 v = bpf_ktime_get_ns();
    q.push(&v, BPF_EXIST);
    return 0;
}
"""
BUSY_STACK = BUSY_QUEUE.replace("BPF_QUEUE", "BPF_STACK")

#: A hash of up to 1M random keys, filled 256 keys per getppid() call.
BIG_HASH = """\
BPF_HASH(big, u32, u64, 1048576);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    for (int i = 0; i < 256; i++) {
        u32 k = bpf_get_prandom_u32();
        u64 v = i;
        big.update(&k, &v);
    }
    return 0;
}
"""


def cell(line: str, source: str) -> str:
    """A ``%%bpf`` cell: ``line`` after ``%%bpf``, then ``source`` from cell line 2."""
    return f"%%bpf {line}\n{source}"


def call_getppid(n: int) -> None:
    """Make ``n`` getppid() system calls from this process."""
    for _ in range(n):
        os.getppid()


def slow_compile_source(functions: int = 100) -> str:
    """C that clang takes about 2 s to compile (100 unrolled functions), attaching nothing."""
    parts = ["BPF_ARRAY(counts, u64, 1);"]
    for i in range(functions):
        parts.append(
            f"int f{i}(void *ctx) {{\n"
            "    u64 acc = bpf_ktime_get_ns();\n"
            "    #pragma unroll\n"
            "    for (int j = 0; j < 64; j++) { acc = acc * 31 + j; if (acc & 1) acc ^= j; }\n"
            "    u32 k = 0; u64 *v = counts.lookup(&k); if (v) *v += acc;\n"
            "    return 0;\n"
            "}"
        )
    return "\n".join(parts) + "\n"


def syscall_tracepoints(count: int) -> list[str]:
    """``count`` syscall-exit tracepoints of this kernel, in name order.

    Exits, not entries: every exit has the same two fields (``__syscall_nr``,
    ``ret``), while some entries have argument types that the headers BCC
    uses here lack (``key_serial_t``).
    """
    root = "/sys/kernel/tracing/events/syscalls"
    if not os.path.isdir(root):
        root = "/sys/kernel/debug/tracing/events/syscalls"
    names = sorted(n.removeprefix("sys_exit_") for n in os.listdir(root) if n.startswith("sys_exit_"))
    return names[:count]


def many_tracepoints_source(count: int, *, loop: int = 0) -> str:
    """One function per syscall tracepoint; ``loop`` > 0 gives each a bounded loop the verifier walks."""
    parts = ["BPF_ARRAY(hits, u64, 1);"]
    for name in syscall_tracepoints(count):
        work = (
            f"    u64 acc = bpf_ktime_get_ns();\n"
            f"    for (int j = 0; j < {loop}; j++) {{ if (acc & 1) acc = acc * 3 + 1; else acc >>= 1; }}\n"
            "    u32 k = 0; u64 *v = hits.lookup(&k); if (v) *v += acc;\n"
            if loop
            else "    u32 k = 0; u64 *v = hits.lookup(&k); if (v) *v += 1;\n"
        )
        parts.append(f"TRACEPOINT_PROBE(syscalls, sys_exit_{name}) {{\n{work}    return 0;\n}}")
    return "\n".join(parts) + "\n"


def huge_loop_source(iterations: int = 2_000_000) -> str:
    """A loop the verifier must walk through, iteration by iteration, past the million instructions it allows."""
    return (
        "BPF_ARRAY(counts, u64, 1);\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    u32 k = 0; u64 *v = counts.lookup(&k);\n"
        "    if (!v) return 0;\n"
        "    #pragma clang loop unroll(disable)\n"
        f"    for (int i = 0; i < {iterations}; i++) {{ *v += i * bpf_get_prandom_u32(); }}\n"
        "    return 0;\n"
        "}\n"
    )


def many_maps_source(maps: int = 70) -> str:
    """A function using more maps than one program may (the kernel allows 64)."""
    decls = "\n".join(f"BPF_ARRAY(m{i}, u64, 1);" for i in range(maps))
    uses = "\n".join(f"    v = m{i}.lookup(&k); if (v) *v += 1;" for i in range(maps))
    return (
        f"{decls}\n"
        "TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    u32 k = 0; u64 *v;\n"
        f"{uses}\n"
        "    return 0;\n"
        "}\n"
    )

#: A queue of 262144 values that fills up (256 pushes per getppid() call) and then stays full.
FULL_QUEUE = """\
BPF_QUEUE(q, u64, 262144);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    for (int i = 0; i < 256; i++) {
        u64 v = i;
        q.push(&v, 0);
    }
    return 0;
}
"""
