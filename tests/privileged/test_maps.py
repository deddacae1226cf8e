"""Maps as DataFrames against the real kernel: each map type filled, read and checked exactly."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bpfnb import Probe, Program, UnsupportedMapError
from bpfnb.kernel.symbols import kernel_symbols
from bpfnb.maps.io import MapIO

ME = os.getpid()
COMM = Path("/proc/self/comm").read_text().strip()[:15]


def getppid_on(cpu: int, times: int) -> None:
    """Make ``times`` getppid() calls from this process, on one CPU."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        for _ in range(times):
            os.getppid()
    finally:
        os.sched_setaffinity(0, before)


def close_bad_fds(*fds: int) -> None:
    """Enter close() with chosen numbers: fds this process surely does not hold."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


STRUCTS = f"""
struct key_t {{ u32 pid; u32 cpu; char comm[16]; }};
struct val_t {{ u64 count; u64 bytes; u64 ts; }};
struct pad_t {{ u8 small; u64 big; }};
struct outer_t {{ struct {{ u16 a; u32 b; }} in; char tag[4]; u32 pid; }};
BPF_HASH(counts, struct key_t, struct val_t);
BPF_HASH(padded, struct pad_t, struct outer_t);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (pid != {ME}) return 0;
    struct key_t k = {{}};
    k.pid = pid;
    k.cpu = bpf_get_smp_processor_id();
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    struct val_t zero = {{}}, *v = counts.lookup_or_try_init(&k, &zero);
    if (v) {{ v->count++; v->bytes += 3; v->ts = bpf_ktime_get_boot_ns(); }}
    struct pad_t p = {{.small = 200, .big = 0x1122334455667788ULL}};
    struct outer_t o = {{.in = {{.a = 7, .b = 70000}}, .tag = "ok", .pid = pid}};
    padded.update(&p, &o);
    return 0;
}}
"""


def test_struct_keys_and_values_padding_and_nesting(no_leaks):
    with Program(STRUCTS) as prog:
        getppid_on(0, 30)
        getppid_on(1 % os.cpu_count(), 12)
        frame = prog["counts"].df().sort_values("cpu", ignore_index=True)
        assert list(frame.columns) == ["pid", "cpu", "comm", "count", "bytes", "ts"]
        assert frame["pid"].tolist() == [ME] * len(frame)
        assert frame["comm"].tolist() == [COMM] * len(frame)
        assert frame["count"].sum() == 42 and frame["bytes"].sum() == 126
        if os.cpu_count() > 1:
            assert frame[["cpu", "count"]].values.tolist() == [[0, 30], [1, 12]]
        padded = prog["padded"].df()
        assert list(padded.columns) == ["small", "big", "in.a", "in.b", "tag", "pid"]
        assert padded.values.tolist() == [[200, 0x1122334455667788, 7, 70000, "ok", ME]]
        view = prog["counts"]
        assert (view.name, view.map_type, view.key_type, view.value_type) == (
            "counts", "hash", "struct key_t", "struct val_t",
        )  # fmt: skip
        assert len(view) == len(frame)
        key = next(iter(view))
        assert key[0] == ME and view[key]["count"] in (30, 12, 42)
        assert key in view and (0, 0, b"nobody") not in view


def test_decoders_on_a_live_map(no_leaks):
    with Program(STRUCTS) as prog:
        getppid_on(0, 1)
        frame = prog["counts"].df(decode={"ts": "boottime", "pid": {ME: "me"}})
        assert frame["pid"].tolist() == ["me"] and frame["pid_raw"].tolist() == [ME]
        assert abs((time.time() - frame["ts"][0].timestamp())) < 5


def test_syscall_errno_and_kernel_symbol_decoders(no_leaks):
    source = f"""
    BPF_HASH(syscalls, u32, u64);
    BPF_HASH(results, s64, u64);
    BPF_HASH(first_ip, u32, u64);
    BPF_STACK_TRACE(stacks, 16);
    BPF_HASH(stack_of, u32, int);
    TRACEPOINT_PROBE(raw_syscalls, sys_enter) {{
        if ((bpf_get_current_pid_tgid() >> 32) != {ME} || args->id != __NR_getppid) return 0;
        u32 nr = args->id;
        syscalls.increment(nr);
        u64 ips[1] = {{}};
        bpf_get_stack(args, ips, sizeof(ips), 0);
        first_ip.update(&nr, &ips[0]);
        int id = stacks.get_stackid(args, 0);
        stack_of.update(&nr, &id);
        return 0;
    }}
    TRACEPOINT_PROBE(syscalls, sys_exit_close) {{
        if ((bpf_get_current_pid_tgid() >> 32) != {ME}) return 0;
        s64 ret = args->ret;
        results.increment(ret);
        return 0;
    }}
    """
    with Program("#include <asm/unistd.h>\n" + source) as prog:
        getppid_on(0, 2)
        close_bad_fds(987_654)
        assert prog["syscalls"].df(decode={"key": "syscall"})[["key", "value"]].values.tolist() == [["getppid", 2]]
        results = prog["results"].df(decode={"key": "errno"})
        assert results.set_index("key")["value"]["EBADF"] >= 1
        symbol = prog["first_ip"].df(decode={"value": "ksym"})["value"][0]
        stack_id = next(iter(prog["stack_of"].values()))
        assert symbol == prog["stacks"].frames(stack_id)[0]
        assert symbol in set(kernel_symbols().names_.tolist())


def test_fallback_without_batches_reads_the_same(no_leaks):
    with Program(STRUCTS) as prog:
        getppid_on(0, 5)
        getppid_on(1 % os.cpu_count(), 5)
        view = prog["counts"]
        fast = view.df().sort_values("cpu", ignore_index=True)
        assert view._io.last_path == "batch"
        walk = MapIO(view.spec.fd, view.layout, view.max_entries, batch=False)
        keys, values = walk.read()
        slow = view._frame(keys, values, decode=None, percpu="sum").sort_values("cpu", ignore_index=True)
        assert walk.last_path == "walk"
        assert slow.equals(fast)
        assert walk.count() == len(view) == len(fast)


def test_len_and_clear_on_hash_and_array(no_leaks):
    source = """
    BPF_HASH(h, u32, u64, 4096);
    BPF_ARRAY(a, u64, 8);
    """
    with Program(source) as prog:
        prog.bpf[b"h"].items_update_batch(
            (prog.bpf[b"h"].Key * 3000)(*range(3000)), (prog.bpf[b"h"].Leaf * 3000)(*range(1, 3001))
        )
        prog.bpf[b"a"][prog.bpf[b"a"].Key(5)] = prog.bpf[b"a"].Leaf(99)
        h, a = prog["h"], prog["a"]
        assert len(h) == 3000 and len(a) == 8
        assert h[2999] == 3000 and a[5] == 99 and h[prog.bpf[b"h"].Key(7)] == 8
        assert a.df()["value"].tolist() == [0, 0, 0, 0, 0, 99, 0, 0]
        h.clear()
        a.clear()
        assert len(h) == 0 and h.df().empty
        assert a.df()["value"].tolist() == [0] * 8


def test_per_cpu_maps_sum_columns_and_rows(no_leaks):
    if os.cpu_count() < 2:
        pytest.skip("needs two CPUs")
    source = f"""
    struct v_t {{ u64 n; u32 last; }};
    BPF_PERCPU_ARRAY(pa, u64, 2);
    BPF_PERCPU_ARRAY(small, u32, 1);
    BPF_PERCPU_HASH(ph, u32, struct v_t);
    BPF_TABLE("lru_percpu_hash", u32, u64, lph, 16);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        if (pid != {ME}) return 0;
        pa.increment(1);
        small.increment(0);
        struct v_t zero = {{}}, *v = ph.lookup_or_try_init(&pid, &zero);
        if (v) {{ v->n++; v->last = bpf_get_smp_processor_id() + 100; }}
        u64 two = 2, *w = lph.lookup(&pid);
        if (w) *w += 2; else lph.update(&pid, &two);
        return 0;
    }}
    """
    with Program(source) as prog:
        getppid_on(0, 3)
        getppid_on(1, 5)
        assert prog["small"].df(percpu="columns").values.tolist() == [[0, 3, 5]]
        pa, ph, lph = prog["pa"], prog["ph"], prog["lph"]
        assert (pa.map_type, ph.map_type, lph.map_type) == ("percpu_array", "percpu_hash", "lru_percpu_hash")
        assert pa.df()["value"].tolist() == [0, 8]
        columns = pa.df(percpu="columns")
        assert list(columns.columns) == ["key", "value.cpu0", "value.cpu1"]
        assert columns.iloc[1].tolist() == [1, 3, 5]
        rows = pa.df(percpu="rows")
        assert rows[rows["key"] == 1][["cpu", "value"]].values.tolist() == [[0, 3], [1, 5]]
        assert ph.df()[["key", "n"]].values.tolist() == [[ME, 8]]
        assert ph.df(percpu="columns")[["last.cpu0", "last.cpu1"]].values.tolist() == [[100, 101]]
        assert lph.df()["value"].tolist() == [16]
        assert ph[ME][0][0] == 3 and pa[1] == [3, 5]


def test_lru_hash_and_lpm_trie(no_leaks):
    source = """
    struct lpm_key { u32 prefixlen; u32 addr; };
    BPF_LPM_TRIE(routes, struct lpm_key, u64, 64);
    BPF_TABLE("lru_hash", u32, u64, recent, 4);
    """
    with Program(source) as prog:
        routes, recent = prog.bpf[b"routes"], prog.bpf[b"recent"]
        for prefixlen, addr, value in ((8, "10.0.0.0", 1), (24, "10.1.2.0", 2), (32, "10.1.2.3", 3)):
            packed = int.from_bytes(bytes(map(int, addr.split("."))), "little")
            routes[routes.Key(prefixlen, packed)] = routes.Leaf(value)
        for i in range(10):
            recent[recent.Key(i)] = recent.Leaf(i * 10)
        frame = prog["routes"].df(decode={"addr": "ipv4"}).sort_values("prefixlen", ignore_index=True)
        assert prog["routes"].map_type == "lpm_trie"
        assert frame[["prefixlen", "addr", "value"]].values.tolist() == [
            [8, "10.0.0.0", 1],
            [24, "10.1.2.0", 2],
            [32, "10.1.2.3", 3],
        ]
        lru = prog["recent"].df()
        assert prog["recent"].map_type == "lru_hash"
        assert 0 < len(lru) <= 4 and (lru["value"] == lru["key"] * 10).all()


HISTOGRAMS = f"""
struct hkey {{ char comm[16]; u64 slot; }};
BPF_HISTOGRAM(dist);
BPF_HISTOGRAM(bycomm, struct hkey);
BPF_ARRAY(lin, u64, 8);
TRACEPOINT_PROBE(syscalls, sys_enter_close) {{
    if ((bpf_get_current_pid_tgid() >> 32) != {ME} || args->fd < 50000) return 0;
    dist.increment(bpf_log2l(args->fd));
    struct hkey k = {{.slot = bpf_log2l(args->fd)}};
    bpf_get_current_comm(&k.comm, sizeof(k.comm));
    bycomm.increment(k);
    lin.increment(args->fd / 100000);
    return 0;
}}
"""


def test_histograms_log2_linear_and_struct_keyed(no_leaks):
    from bpfnb.decode.histogram import percentiles

    with Program(HISTOGRAMS) as prog:
        close_bad_fds(*[70_000] * 3, *[140_000] * 5, *[300_000] * 2)
        dist = prog["dist"].df()
        assert prog["dist"].histogram
        assert list(dist.columns) == ["slot", "lo", "hi", "count"]
        used = dist[dist["count"] > 0]
        assert used.values.tolist() == [[17, 65536, 131071, 3], [18, 131072, 262143, 5], [19, 262144, 524287, 2]]
        assert dist["count"].sum() == 10 and len(dist) == 64
        p50 = percentiles(dist, q=[50]).iloc[0]
        assert (p50["lo"], p50["hi"]) == (131072, 262143)
        # Given the unit of the values (here µs), the estimate and its bounds read in it.
        assert prog["dist"].percentiles(q=[50], unit="us")["reads"].tolist() == ["184 ms (131 ms to 262 ms)"]
        assert "reads" not in prog["dist"].percentiles(q=[50])  # "dist" says nothing of its unit
        assert "65536 -> 131071     : 3 " in repr(prog["dist"])
        assert "<pre>" in prog["dist"]._repr_html_()

        bycomm = prog["bycomm"].df()
        assert list(bycomm.columns) == ["comm", "slot", "lo", "hi", "count"]
        assert bycomm.values.tolist() == [
            [COMM, 17, 65536, 131071, 3],
            [COMM, 18, 131072, 262143, 5],
            [COMM, 19, 262144, 524287, 2],
        ]
        linear = prog["lin"].df(buckets="linear", step=100_000)
        assert linear[linear["count"] > 0].values.tolist() == [
            [0, 0, 99_999, 3],
            [1, 100_000, 199_999, 5],
            [3, 300_000, 399_999, 2],
        ]


def test_mmapable_array_is_read_through_a_mapping(no_leaks):
    source = f"""
    BPF_F_TABLE("array", int, u64, fast, 1000, BPF_F_MMAPABLE);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
        if ((bpf_get_current_pid_tgid() >> 32) != {ME}) return 0;
        fast.increment(999, 7);
        return 0;
    }}
    """
    with Program(source) as prog:
        getppid_on(0, 3)
        frame = prog["fast"].df()
        assert prog["fast"]._io.last_path == "mmap"
        assert frame["value"].iloc[999] == 21 and frame["value"].sum() == 21 and len(frame) == 1000


def test_bcc_arrays_and_int_keyed_histograms_are_created_mmapable(no_leaks):
    source = f"""
    struct slot_key {{ int slot; u32 cpu; }};
    BPF_ARRAY(counts, u64, 100);
    BPF_HISTOGRAM(sizes);
    BPF_HISTOGRAM(by_cpu, struct slot_key);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
        if ((bpf_get_current_pid_tgid() >> 32) != {ME}) return 0;
        counts.increment(3);
        sizes.increment(bpf_log2l(1000));
        struct slot_key key = {{.slot = 5, .cpu = 0}};
        by_cpu.increment(key);
        return 0;
    }}
    """
    with Program(source) as prog:
        getppid_on(0, 4)
        assert prog["counts"].df()["value"].iloc[3] == 4
        assert prog["counts"]._io.last_path == "mmap"
        sizes = prog["sizes"].df()
        assert prog["sizes"]._io.last_path == "mmap"
        assert sizes.loc[sizes["count"] > 0, ["lo", "hi", "count"]].values.tolist() == [[512, 1023, 4]]
        # BCC makes a histogram with a struct key a hash, which cannot be mapped.
        assert prog["by_cpu"].map_type == "hash" and prog["by_cpu"].df()["count"].tolist() == [4]


def test_arrays_stay_plain_where_the_kernel_refuses_mmapable_values(no_leaks):
    source = """
    struct locked { struct bpf_spin_lock lock; u64 n; };
    BPF_ARRAY(guarded, struct locked, 4);
    """
    with Program(source, attach=False) as prog:
        assert prog["guarded"].df()["n"].tolist() == [0, 0, 0, 0]


STACK_BINARY = r"""
#include <stdio.h>
__attribute__((noinline)) int bpfnb_leaf(int x) { asm volatile("" ::: "memory"); return x + 1; }
__attribute__((noinline)) int bpfnb_middle(int x) { int r = bpfnb_leaf(x); asm volatile("" ::: "memory"); return r; }
int main(void) {
    char line[16];
    fgets(line, sizeof line, stdin);
    printf("%d\n", bpfnb_middle(41));
    fflush(stdout);
    fgets(line, sizeof line, stdin);
    return 0;
}
"""


def test_stack_traces_symbolized_user_and_kernel(tmp_path, no_leaks):
    binary = tmp_path / "stacky"
    (tmp_path / "stacky.c").write_text(STACK_BINARY)
    subprocess.run(
        ["cc", "-O0", "-fno-omit-frame-pointer", "-o", str(binary), str(tmp_path / "stacky.c")], check=True
    )
    # get_stackid() fails with -EEXIST when two stacks hash to one bucket: with
    # a few stacks in 16k buckets that is about a 1 in 16,000 chance, not 1 in 30.
    source = f"""
    BPF_STACK_TRACE(stacks, 16384);
    BPF_HASH(user_ids, u32, int);
    BPF_HASH(kernel_ids, u32, int);
    int on_leaf(struct pt_regs *ctx) {{
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        int id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
        user_ids.update(&pid, &id);
        return 0;
    }}
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
        u32 pid = bpf_get_current_pid_tgid() >> 32;
        if (pid != {ME}) return 0;
        int id = stacks.get_stackid(args, 0);
        kernel_ids.update(&pid, &id);
        return 0;
    }}
    """
    probe = Probe.parse("uprobe", f"{binary}:bpfnb_leaf=on_leaf")
    with Program(source, probes=[probe]) as prog:
        child = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().strip() == "42"
            os.getppid()
            user_id = prog["user_ids"][child.pid]
            stacks = prog["stacks"]
            assert stacks.map_type == "stack_trace"
            assert stacks.frames(user_id, pid=child.pid)[:3] == ["bpfnb_leaf", "bpfnb_middle", "main"]
            frame = stacks.df(pid=child.pid).set_index("stack_id")
            assert frame.loc[user_id, "frames"][:3] == ["bpfnb_leaf", "bpfnb_middle", "main"]
            assert frame.loc[user_id, "folded"].endswith("main;bpfnb_middle;bpfnb_leaf")
        finally:
            child.stdin.write("bye\n")
            child.stdin.close()
            child.wait()
            child.stdout.close()
        kernel_frames = frame.loc[prog["kernel_ids"][ME], "frames"]
        kernel_names = set(kernel_symbols().names_.tolist())
        assert kernel_frames and all(name in kernel_names for name in kernel_frames)
        address = np.array(stacks[prog["kernel_ids"][ME]][:1], dtype=np.uint64)
        decoded = stacks.df(decode={"stack_id": "hex"})
        assert "stack_id_raw" in decoded.columns
        assert kernel_symbols().names(address)[0] == kernel_frames[0]


def test_queue_and_stack_views_do_not_consume(no_leaks):
    source = """
    BPF_QUEUE(fifo, u64, 8);
    BPF_STACK(lifo, u64, 8);
    """
    with Program(source) as prog:
        for value in (1, 2, 3):
            prog.bpf[b"fifo"].push(prog.bpf[b"fifo"].Leaf(value))
            prog.bpf[b"lifo"].push(prog.bpf[b"lifo"].Leaf(value))
        fifo, lifo = prog["fifo"], prog["lifo"]
        assert fifo.df()["value"].tolist() == [1, 2, 3] == fifo.df()["value"].tolist()
        assert lifo.df()["value"].tolist() == [3, 2, 1] == lifo.df()["value"].tolist()
        assert len(fifo) == 3 and fifo.peek() == 1 and lifo.peek() == 3
        assert fifo.df(consume=True)["value"].tolist() == [1, 2, 3]
        assert len(fifo) == 0 and fifo.peek() is None
        lifo.clear()
        assert lifo.df().empty


def test_prog_array_names_programs_and_cgroup_array(no_leaks):
    source = """
    BPF_PROG_ARRAY(jumps, 4);
    BPF_CGROUP_ARRAY(groups, 2);
    int tail_target(void *ctx) { return 0; }
    """
    cgroup2 = next(line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if " cgroup2 " in line)
    with Program(source, attach=False) as prog:
        from bcc import BPF

        target = prog.bpf.load_func(b"tail_target", BPF.KPROBE)
        prog.bpf[b"jumps"][prog.bpf[b"jumps"].Key(2)] = prog.bpf[b"jumps"].Leaf(target.fd)
        jumps = prog["jumps"].df()
        assert jumps[["key", "program"]].values.tolist() == [[2, "tail_target"]]
        assert len(prog["jumps"]) == 1
        prog["jumps"].clear()
        assert len(prog["jumps"]) == 0
        groups = prog["groups"]
        groups.set(1, cgroup2)
        assert groups.df().values.tolist() == [[1, cgroup2]] and len(groups) == 1
        groups.clear()
        assert len(groups) == 0


def test_unsupported_and_event_maps_explain_themselves(no_leaks):
    source = """
    BPF_INODE_STORAGE(per_inode, u64);
    BPF_SOCKMAP(sockets, 4);
    BPF_RINGBUF_OUTPUT(events, 1);
    int unused(void *ctx) { return 0; }
    """
    with Program(source, attach=False) as prog:
        storage, sockets, events = prog["per_inode"], prog["sockets"], prog["events"]
        assert (storage.map_type, sockets.map_type, events.map_type) == ("inode_storage", "sockmap", "ringbuf")
        with pytest.raises(UnsupportedMapError, match="'per_inode' is an inode_storage map") as info:
            storage.df()
        assert "hash map" in info.value.hint
        with pytest.raises(UnsupportedMapError, match="sockmap with 4-byte values") as info:
            sockets.df()
        assert 'BPF_TABLE("sockmap", u32, u64' in info.value.hint
        with pytest.raises(UnsupportedMapError) as info:
            len(events)
        assert "prog.stream('events')" in info.value.hint
        assert "UnsupportedMapError" in repr(storage) and "UnsupportedMapError" in storage._repr_html_()
        assert "per_inode" in repr(prog)


def test_history_records_deltas_and_rates_and_stops_with_the_program(no_leaks):
    source = f"""
    BPF_ARRAY(calls, u64, 1);
    TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
        if ((bpf_get_current_pid_tgid() >> 32) != {ME}) return 0;
        calls.increment(0);
        return 0;
    }}
    """
    with Program(source) as prog:
        slow = prog["calls"].history(interval=600)
        deadline = time.monotonic() + 5
        while slow.snapshots < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        first = slow.record()
        getppid_on(0, 10)
        second = slow.record()
        assert second["value"].tolist() == [first["value"][0] + 10]
        assert second["delta"].tolist() == [10.0] and second["rate"][0] > 0
        assert np.isnan(slow.df()["delta"][0])  # the first snapshot has nothing to compare with

        recorder = prog["calls"].history(interval=0.02, max_rows=5)
        assert recorder in prog.resources and slow in prog.resources
        while recorder.snapshots < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        frame = recorder.df()
        assert list(frame.columns) == ["time", "key", "value", "delta", "rate"]
        assert len(frame) == len(recorder) <= 5
        assert recorder.dropped_rows >= 3 and frame["time"].is_monotonic_increasing
        assert recorder.snapshot()["value"].tolist() == [frame["value"].iloc[-1]]
        assert "recording" in repr(recorder)
    assert not recorder.running
    assert "stopped" in repr(recorder)


def test_history_of_a_histogram_feeds_the_heatmap(no_leaks, tmp_path):
    import bpfnb.plot

    with Program(HISTOGRAMS) as prog:
        recorder = prog["dist"].history(interval=600)
        deadline = time.monotonic() + 5
        while recorder.snapshots < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        close_bad_fds(70_000, 70_001, 140_000)
        latest = recorder.record()
        assert list(latest.columns) == ["time", "slot", "lo", "hi", "count", "delta", "rate"]
        changed = latest[latest["delta"] > 0]
        assert changed[["slot", "delta"]].values.tolist() == [[17, 2.0], [18, 1.0]]
        frame = recorder.df()
        # What the plots need to say what they show travels with the frame, and survives Parquet.
        assert frame.attrs == {
            "buckets": "log2", "name": "dist", "interval": 600, "units": {"delta": "count", "rate": "count"}
        }
        frame.to_parquet(tmp_path / "history.parquet")
        figure = bpfnb.plot.heatmap(frame)
        assert figure.axes[1].get_ylabel() == "events per 10 min"
        by_struct = prog["bycomm"].history(interval=600)
        assert "count" in by_struct.record().columns
