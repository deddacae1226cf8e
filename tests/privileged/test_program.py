"""Program against the real kernel: every kind of hook, its errors, and its cleanup."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bpfnb import AttachError, CompileError, Interrupted, LoadError, Probe, Program
from bpfnb.kernel.environment import tracefs_dir

from .conftest import kernel_prog_ids, own_bpf_objects, run_workload

CALLS = 1000

GETPPID_COUNTER = """
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}
"""

needs_kprobes = pytest.mark.skipif(
    not os.path.exists(os.path.join(tracefs_dir() or "/sys/kernel/tracing", "kprobe_events")),
    reason="this kernel has no kprobes (CONFIG_KPROBES is off)",
)


def count_of(program: Program, pid: int, table: str = "counts") -> int:
    counts = program.bpf[table.encode()]
    value = counts.get(counts.Key(pid))
    return 0 if value is None else value.value


def test_tracepoint_counts_exactly(workload, no_leaks):
    with Program(GETPPID_COUNTER) as program:
        pid = run_workload(workload, CALLS)
        assert count_of(program, pid) == CALLS
        assert [p.kind for p in program.attachments] == ["tracepoint"]
        assert program.state == "attached"
    assert program.closed and program.attachments == []


def test_raw_tracepoint_by_name_and_by_option(workload, no_leaks):
    source = """
    #include <asm/unistd.h>
    BPF_HASH(counts, u32, u64);
    BPF_HASH(exits, u32, u64);
    RAW_TRACEPOINT_PROBE(sys_enter) {
        if (ctx->args[1] == __NR_getppid) {
            u32 pid = bpf_get_current_pid_tgid() >> 32;
            counts.increment(pid);
        }
        return 0;
    }
    int on_exit(struct bpf_raw_tracepoint_args *ctx) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        exits.increment(pid);
        return 0;
    }
    """
    with Program(source, probes=[Probe.parse("raw_tracepoint", "sched_process_exit=on_exit")]) as program:
        pid = run_workload(workload, CALLS)
        assert count_of(program, pid) == CALLS
        assert count_of(program, pid, "exits") == 1


def test_unknown_raw_tracepoint(no_leaks):
    source = "int on_nothing(void *ctx) { return 0; }\n"
    with pytest.raises(AttachError, match="no raw tracepoint no_such_event"):
        Program(source, probes=[Probe.parse("raw_tracepoint", "no_such_event")])


def test_uprobe_and_uretprobe_on_a_test_binary(workload, no_leaks):
    source = """
    #include <uapi/linux/ptrace.h>
    BPF_HASH(calls, u32, u64);
    BPF_HASH(returned, u32, u64);
    int on_call(struct pt_regs *ctx) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        calls.increment(pid);
        return 0;
    }
    int on_return(struct pt_regs *ctx) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        returned.increment(pid, PT_REGS_RC(ctx));
        return 0;
    }
    """
    probes = [
        Probe.parse("uprobe", f"{workload}:bpfnb_target=on_call"),
        Probe.parse("uretprobe", f"{workload}:bpfnb_target=on_return"),
    ]
    with Program(source, probes=probes) as program:
        pid = run_workload(workload, CALLS)
        assert count_of(program, pid, "calls") == CALLS
        # bpfnb_target(i) returns 2*i, so the returns add up to 2 * sum(range(CALLS)).
        assert count_of(program, pid, "returned") == 2 * sum(range(CALLS))


def test_uprobe_on_libc_with_pid_filter(workload, no_leaks):
    source = """
    BPF_HASH(counts, u32, u64);
    int on_getppid(struct pt_regs *ctx) {
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        counts.increment(pid);
        return 0;
    }
    """
    other = subprocess.Popen([sys.executable, "-c", "import os, time\nfor _ in range(50): os.getppid()\ntime.sleep(30)"])
    try:
        probe = Probe.parse("uprobe", f"c:getppid,pid={other.pid}")
        with Program(source, probes=[probe]) as program:
            pid = run_workload(workload, CALLS)
            assert program.attachments[0].function == "on_getppid"
            assert count_of(program, pid) == 0  # another pid: filtered out
    finally:
        other.kill()
        other.wait()
    with Program(source, probes=[Probe.parse("uprobe", "c:getppid")]) as program:
        pid = run_workload(workload, CALLS)
        assert count_of(program, pid) == CALLS


def test_perf_event_sampling(no_leaks):
    source = """
    BPF_ARRAY(samples, u64, 1);
    int on_sample(struct bpf_perf_event_data *ctx) {
        int zero = 0;
        samples.increment(zero);
        return 0;
    }
    """
    probe = Probe.parse("perf_event", "software:cpu-clock=on_sample,freq=999")
    with Program(source, probes=[probe]) as program:
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            pass
        samples = program.bpf[b"samples"][ctypes.c_int(0)].value
        perf_fds = own_bpf_objects()["perf_event"]
    # A busy half second on a 999 Hz clock: hundreds of samples, not one or two.
    assert samples > 100
    assert perf_fds >= os.cpu_count()


@pytest.fixture
def veth_pair():
    """A veth pair: bpfnb-h0 here, bpfnb-h1 in a namespace, 10.199.0.1 <-> 10.199.0.2."""
    ns = f"bpfnb-test-{os.getpid()}"
    commands = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", "bpfnb-h0", "type", "veth", "peer", "name", "bpfnb-h1"],
        ["ip", "link", "set", "bpfnb-h1", "netns", ns],
        ["ip", "addr", "add", "10.199.0.1/30", "dev", "bpfnb-h0"],
        ["ip", "link", "set", "bpfnb-h0", "up"],
        ["ip", "-n", ns, "addr", "add", "10.199.0.2/30", "dev", "bpfnb-h1"],
        ["ip", "-n", ns, "link", "set", "bpfnb-h1", "up"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", "bpfnb-h0"], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def send_udp_from(namespace: str, address: str, *, count: int) -> None:
    sender = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({count}):\n"
        f"    s.sendto(b'x', ('{address}', 9)); time.sleep(0.01)\n"
    )
    subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", sender], check=True)


XDP_COUNTER = """
BPF_ARRAY(packets, u64, 1);
int count_packets(struct xdp_md *ctx) {
    int zero = 0;
    packets.increment(zero);
    return XDP_PASS;
}
"""


def xdp_attached(device: str) -> bool:
    out = subprocess.run(["ip", "-d", "link", "show", "dev", device], capture_output=True, text=True, check=True)
    return "prog/xdp" in out.stdout


def test_xdp_on_a_veth_pair(veth_pair, no_leaks):
    with Program(XDP_COUNTER, probes=[Probe.parse("xdp", "bpfnb-h0,mode=skb")]) as program:
        assert xdp_attached("bpfnb-h0")
        send_udp_from(veth_pair, "10.199.0.1", count=5)
        # Five datagrams, after an ARP exchange that also crosses the device.
        assert program.bpf[b"packets"][ctypes.c_int(0)].value >= 5
    assert not xdp_attached("bpfnb-h0")


def test_xdp_is_gone_when_the_process_is_killed(veth_pair):
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from bpfnb import Probe, Program
        program = Program({XDP_COUNTER!r}, probes=[Probe.parse("xdp", "bpfnb-h0,mode=skb")])
        print(program.stats().prog_id[0], flush=True)
        time.sleep(60)
        """
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        prog_id = int(child.stdout.readline())
        assert xdp_attached("bpfnb-h0")
        child.kill()
    deadline = time.monotonic() + 5
    while xdp_attached("bpfnb-h0") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not xdp_attached("bpfnb-h0")
    assert prog_id not in kernel_prog_ids()


def test_xdp_refuses_to_replace_another_program(veth_pair, no_leaks):
    with Program(XDP_COUNTER, probes=[Probe.parse("xdp", "bpfnb-h0,mode=skb")]):
        with pytest.raises(AttachError, match="already has an XDP program"):
            Program(XDP_COUNTER, probes=[Probe.parse("xdp", "bpfnb-h0,mode=skb")])


def test_socket_filter_on_loopback(no_leaks):
    source = """
    #include <uapi/linux/if_ether.h>
    #include <uapi/linux/in.h>
    #include <uapi/linux/ip.h>
    BPF_ARRAY(udp_to_port, u64, 1);
    int on_packet(struct __sk_buff *skb) {
        u8 proto = load_byte(skb, ETH_HLEN + offsetof(struct iphdr, protocol));
        u16 dport = load_half(skb, ETH_HLEN + sizeof(struct iphdr) + 2);
        if (proto == IPPROTO_UDP && dport == 47999) {
            int zero = 0;
            udp_to_port.increment(zero);
        }
        return -1;
    }
    """
    with Program(source, probes=[Probe.parse("socket_filter", "lo")]) as program:
        fd = program.sockets["on_packet"]
        assert os.fstat(fd)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(20):
                sender.sendto(b"x", ("127.0.0.1", 47999))
        time.sleep(0.1)
        # A packet socket on lo sees each datagram twice: going out and coming in.
        assert program.bpf[b"udp_to_port"][ctypes.c_int(0)].value == 40
    with pytest.raises(OSError):
        os.fstat(fd)


def test_compile_error_is_reported_in_the_source_lines(no_leaks):
    source = "BPF_HASH(counts, u32, u64);\nTRACEPOINT_PROBE(sched, sched_switch) {\n    int x = args->prev_pidd;\n    return 0;\n}\n"
    with pytest.raises(CompileError) as caught:
        Program(source, first_line=2)
    assert "no member named 'prev_pidd'" in caught.value.message
    assert "(line 4)" in caught.value.message
    assert caught.value.details.startswith("line 4:19: error:")
    assert "int x = args->prev_pidd;" in caught.value.details


@pytest.mark.parametrize(
    ("source", "signal_name", "line"),
    [
        # A typo inside a BCC map macro segfaults BCC's rewriter.
        ("BPF_HASH(c u32, u64);\nint f(void *ctx) { return 0; }\n", "SIGSEGV", 2),
        # LLVM 14 aborts on the result of an atomic add used as a value.
        (
            "BPF_ARRAY(a, u32, 1);\nint f(void *ctx) {\n    int k = 0; u32 *v = a.lookup(&k);\n"
            "    if (!v) return 0;\n    u32 r = __sync_fetch_and_add(v, 1);\n    return r;\n}\n",
            "SIGABRT",
            None,
        ),
    ],
)
def test_a_compiler_crash_is_a_compile_error_and_this_process_survives(source, signal_name, line, no_leaks):
    with pytest.raises(CompileError) as caught:
        Program(source, attach=False, first_line=2)
    assert caught.value.message.startswith(f"the compiler crashed ({signal_name})")
    assert caught.value.line == line
    assert "separate process" in caught.value.hint


def test_a_compile_that_never_ends_is_stopped_and_said_so(monkeypatch, no_leaks):
    from bpfnb.engines.bcc import compiler

    # No cell compiles in a millisecond: the trial child is killed as one stuck for minutes would be.
    monkeypatch.setattr(compiler, "_TRIAL_TIMEOUT", 0.001)
    with pytest.raises(CompileError) as caught:
        Program(f"// {time.time_ns()}\nint f(void *ctx) {{ return 0; }}\n", attach=False)
    assert caught.value.message == "the compiler did not finish within 0.001 s, and was stopped"
    assert "crashed" not in caught.value.message and "unharmed" in caught.value.hint


def test_ctrl_c_while_compiling_leaves_nothing_and_says_so_in_one_line(no_leaks):
    timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(Interrupted) as caught:
            Program(GETPPID_COUNTER)
    finally:
        timer.join()
    assert len(caught.value._render_traceback_()) == 1


def test_verifier_rejection_names_the_line_and_the_reason(no_leaks):
    source = """BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    u32 pid = 1;
    u64 *v = counts.lookup(&pid);
    return *v;
}"""
    with pytest.raises(LoadError) as caught:
        Program(source)
    error = caught.value
    assert error.function == "tracepoint__syscalls__sys_enter_getppid"
    assert "at line 5" in error.message and "map_value_or_null" in error.message
    assert "; line 5: return *v;" in error.details


def test_half_way_failure_leaves_nothing_attached(workload, no_leaks):
    source = GETPPID_COUNTER + "\nTRACEPOINT_PROBE(no_such_category, no_such_event) { return 0; }\n"
    before = own_bpf_objects()
    with pytest.raises(AttachError, match="no tracepoint no_such_category:no_such_event"):
        Program(source)
    assert own_bpf_objects() == before


def test_explicit_probe_failure_after_auto_attach_releases_everything(workload, veth_pair, no_leaks):
    source = GETPPID_COUNTER + XDP_COUNTER
    with pytest.raises(AttachError, match="no network device named 'nope0'"):
        Program(source, probes=[Probe.parse("xdp", "nope0=count_packets")])
    with pytest.raises(AttachError, match="no symbol 'no_such_symbol'"):
        Program(source, probes=[Probe.parse("uprobe", f"{workload}:no_such_symbol=count_packets")])
    assert not xdp_attached("bpfnb-h0")


def test_unknown_function_and_ambiguous_probe(no_leaks):
    source = "int a(void *ctx) { return 0; }\nint b(void *ctx) { return 0; }\n"
    with pytest.raises(AttachError, match="no function 'c'"):
        Program(source, probes=[Probe.parse("raw_tracepoint", "sys_enter=c")])
    with pytest.raises(AttachError, match="candidates: a, b"):
        Program(source, probes=[Probe.parse("raw_tracepoint", "sys_enter")])


def test_no_attach_loads_without_attaching(workload, no_leaks):
    with Program(GETPPID_COUNTER, attach=False) as program:
        assert program.state == "loaded, not attached"
        assert len(program.stats()) == 1
        pid = run_workload(workload, 10)
        assert count_of(program, pid) == 0


def test_stats_count_runs_when_enabled(workload, no_leaks):
    import bpfnb

    bpfnb.enable_stats()
    try:
        with Program(GETPPID_COUNTER) as program:
            run_workload(workload, CALLS)
            stats = program.stats()
        assert stats.attrs["stats_enabled"]
        assert stats.run_count[0] >= CALLS
        assert stats.run_time_ns[0] > 0
    finally:
        bpfnb.disable_stats()


def test_detach_is_idempotent_and_frees_the_kernel_program(no_leaks):
    program = Program(GETPPID_COUNTER)
    prog_id = int(program.stats().prog_id[0])
    assert prog_id in kernel_prog_ids()
    program.detach()
    program.detach()
    assert prog_id not in kernel_prog_ids()
    assert "detached" in repr(program)


def test_a_forgotten_program_is_released_at_exit(tmp_path):
    script = "from bpfnb import Program\nprogram = Program(" + repr(GETPPID_COUNTER) + ")\nprint(program.stats().prog_id[0])\n"
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    assert int(out.stdout) not in kernel_prog_ids()


@needs_kprobes
def test_kprobe_attaches_where_the_kernel_has_kprobes(no_leaks):
    source = "BPF_ARRAY(hits, u64, 1);\nint kprobe__do_nanosleep(void *ctx) { int z = 0; hits.increment(z); return 0; }\n"
    with Program(source) as program:
        time.sleep(0.01)
        assert program.bpf[b"hits"][ctypes.c_int(0)].value >= 1


@pytest.mark.skipif(
    os.path.exists(os.path.join(tracefs_dir() or "/sys/kernel/tracing", "kprobe_events")),
    reason="this kernel has kprobes; the no-kprobes message cannot be seen here",
)
def test_kprobe_on_a_kernel_without_kprobes_says_so(no_leaks):
    source = "int kprobe__do_nanosleep(void *ctx) { return 0; }\n"
    with pytest.raises(AttachError, match="CONFIG_KPROBES is off"):
        Program(source)


def test_fentry_attaches_or_its_refusal_is_explained(no_leaks):
    try:
        program = Program("KFUNC_PROBE(do_nanosleep) { return 0; }\n")
    except LoadError as error:
        assert "kfunc__do_nanosleep" in error.message and "not available here" in error.message
        return
    with program:
        assert [p.kind for p in program.attachments] == ["kfunc"]


TRY_A_TRACEPOINT = (
    "import bpfnb\n"
    "try:\n"
    "    bpfnb.Program('TRACEPOINT_PROBE(sched, sched_switch) { return 0; }')\n"
    "except bpfnb.BpfnbError as error:\n"
    "    print(type(error).__name__, error.message)\n"
)


def run_elsewhere(prefix: list[str], shell_setup: str = "") -> str:
    """Run TRY_A_TRACEPOINT in another process (its own mount namespace when set up)."""
    command = prefix + [sys.executable, "-c", TRY_A_TRACEPOINT]
    if shell_setup:
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{shell_setup}; exec {shlex.join(command)}"]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def test_missing_tracefs_says_how_to_mount_it():
    out = run_elsewhere([], "umount /sys/kernel/debug/tracing 2>/dev/null; umount /sys/kernel/tracing; umount /sys/kernel/debug")
    assert out.startswith("SetupError tracefs is not mounted: run `sudo mount -t tracefs none /sys/kernel/tracing`")


def test_missing_headers_say_how_to_install_them():
    out = run_elsewhere([], "mount -t tmpfs none /lib/modules")
    assert out.startswith("SetupError kernel headers not found")
    assert "make lab" in out


@pytest.mark.usefixtures("checkout_reachable_by_others")
def test_unprivileged_user_is_told_to_use_the_privileged_kernel():
    out = run_elsewhere(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"])
    assert out.startswith("PrivilegeError this process is not root and lacks CAP_BPF/CAP_PERFMON")
    assert "'eBPF (bpfnb)' kernel" in out


def test_asking_for_a_map_that_is_not_there_lists_the_maps(no_leaks):
    from bpfnb import NoSuchMapError

    with Program(GETPPID_COUNTER) as program:
        with pytest.raises(NoSuchMapError, match=r"has no map 'cuonts': did you mean 'counts'\?") as caught:
            program["cuonts"]
        assert caught.value.hint == "Its maps: counts."
        assert list(program.maps) == ["counts"]
        assert program._ipython_key_completions_() == ["counts"]
