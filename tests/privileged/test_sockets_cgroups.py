"""Socket, cgroup and network-namespace hooks and the maps they use, on both engines, against the real kernel.

Each test makes its own cgroup or network namespace, runs a real workload
in it, and checks the numbers the programs report; after each, neither
``bpftool cgroup show`` nor the kernel's program list holds anything of ours.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import bpfnb
from bpfnb.kernel.cgroups import cgroup2_root
from bpfnb.kernel.constants import ATTACH_TYPES, PROG_TYPES
from bpfnb.kernel.handles import socket_cookie
from bpfnb.kernel.libbpf import link_create, prog_load
from bpfnb.kernel.netns import entered

from .conftest import kernel_prog_ids

ENGINES = ["bcc", "libbpf"]
LIBBPF_HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_endian.h>\n'
LIBBPF_TAIL = '\nchar LICENSE[] SEC("license") = "GPL";\n'


def libbpf_cell(body: str) -> str:
    return LIBBPF_HEAD + textwrap.dedent(body) + LIBBPF_TAIL


def attached_to(cgroup: Path) -> list[str]:
    """The attach types of the programs on ``cgroup``, as bpftool lists them."""
    out = subprocess.run(["bpftool", "cgroup", "show", str(cgroup)], capture_output=True, text=True, check=True).stdout
    return [line.split()[1] for line in out.splitlines()[1:] if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def cgroup() -> Iterator[Path]:
    path = cgroup2_root() / f"bpfnb-test-{os.getpid()}"
    path.mkdir()
    yield path
    for pid in (path / "cgroup.procs").read_text().split():
        os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (path / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    path.rmdir()


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"bpfnb-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], check=True)


@contextlib.contextmanager
def started_in(cgroup: Path, code: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start Python ``code`` in a new process inside ``cgroup``; yield it with the first line it prints; kill it after."""
    procs = cgroup / "cgroup.procs"
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: procs.write_text(str(os.getpid())),
    )
    try:
        assert child.stdout is not None
        yield child, child.stdout.readline()
    finally:
        child.kill()
        child.communicate()


def run_in(cgroup: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a new process inside ``cgroup``."""
    procs = cgroup / "cgroup.procs"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
        preexec_fn=lambda: procs.write_text(str(os.getpid())),
    )


# -- cgroup/connect4 -----------------------------------------------------------------

CONNECT4 = {
    "bcc": """
        int redirect(struct bpf_sock_addr *ctx) {
            if (ctx->user_port == bpf_htons(FROM))
                ctx->user_port = bpf_htons(TO);
            return 1;
        }
    """,
    "libbpf": libbpf_cell("""
        SEC("cgroup/connect4")
        int redirect(struct bpf_sock_addr *ctx) {
            if (ctx->user_port == bpf_htons(FROM))
                ctx->user_port = bpf_htons(TO);
            return 1;
        }
    """),
}

CONNECT = "import socket; print(socket.create_connection(('127.0.0.1', {port}), timeout=5).getpeername()[1])"


@pytest.mark.parametrize("engine", ENGINES)
def test_connect4_redirects_connections_made_inside_the_cgroup(engine, cgroup, no_leaks):
    server = socket.create_server(("127.0.0.1", 0))
    to, nowhere = server.getsockname()[1], free_port()
    source = CONNECT4[engine].replace("FROM", str(nowhere)).replace("TO", str(to))
    # A libbpf program knows its hook from SEC(); a BCC function is told.
    options = () if engine == "libbpf" else (("type", "connect4"),)
    with server, bpfnb.Program(source, probes=[bpfnb.Probe("cgroup", cgroup.name, "redirect", options)]) as program:
        assert attached_to(cgroup) == ["cgroup_inet4_connect"]
        assert [str(p) for p in program.attachments] == [f"cgroup {cgroup.name},type=connect4 -> redirect"]
        inside = run_in(cgroup, CONNECT.format(port=nowhere))
        assert inside.stdout.strip() == str(to), inside.stderr
        outside = subprocess.run([sys.executable, "-c", CONNECT.format(port=nowhere)], capture_output=True, text=True)
        assert "ConnectionRefusedError" in outside.stderr
    assert attached_to(cgroup) == []


def test_a_cell_rerun_replaces_its_cgroup_program(cgroup, no_leaks):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    try:
        cell = f"%%bpf redirect --cgroup {cgroup}\n" + CONNECT4["libbpf"].replace("FROM", "1").replace("TO", "2")
        for _ in range(2):
            assert shell.run_cell(cell).success
            assert attached_to(cgroup) == ["cgroup_inet4_connect"]
        shell.run_line_magic("bpf", "detach redirect")
        assert attached_to(cgroup) == []
    finally:
        shell.run_line_magic("unload_ext", "bpfnb")
        InteractiveShell.clear_instance()


def test_a_missing_cgroup_is_an_attach_error_that_leaves_nothing(no_leaks):
    source = CONNECT4["libbpf"].replace("FROM", "1").replace("TO", "2")
    with pytest.raises(bpfnb.AttachError) as error:
        bpfnb.Program(source, probes=[bpfnb.Probe("cgroup", "bpfnb-no-such-group")])
    assert "no cgroup 'bpfnb-no-such-group'" in error.value.message
    assert f"mkdir {cgroup2_root()}/bpfnb-no-such-group" in (error.value.hint or "")


def test_a_bcc_cgroup_hook_needs_its_type(cgroup, no_leaks):
    source = CONNECT4["bcc"].replace("FROM", "1").replace("TO", "2")
    with pytest.raises(bpfnb.BpfnbError, match="type=connect4"):
        bpfnb.Program(source, probes=[bpfnb.Probe("cgroup", str(cgroup), "redirect")])
    assert attached_to(cgroup) == []


def test_a_libbpf_program_attaches_only_as_its_section_says(cgroup, no_leaks):
    source = CONNECT4["libbpf"].replace("FROM", "1").replace("TO", "2")
    with pytest.raises(bpfnb.AttachError, match="loaded for the cgroup hook connect4"):
        bpfnb.Program(source, probes=[bpfnb.Probe("cgroup", str(cgroup), "redirect", (("type", "bind4"),))])
    assert attached_to(cgroup) == []


def test_a_killed_process_leaves_nothing_on_the_cgroup(cgroup):
    before = kernel_prog_ids()
    source = CONNECT4["libbpf"].replace("FROM", "1").replace("TO", "2")
    code = f"""
import sys, time, bpfnb
p = bpfnb.Program({source!r}, probes=[bpfnb.Probe("cgroup", {str(cgroup)!r})])
print("attached", flush=True)
time.sleep(60)
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "attached"
    assert attached_to(cgroup) == ["cgroup_inet4_connect"]
    child.kill()
    child.communicate()
    deadline = time.monotonic() + 5
    while (attached_to(cgroup) or kernel_prog_ids() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attached_to(cgroup) == []
    assert not kernel_prog_ids() - before


# -- cgroup_skb with sk_storage ------------------------------------------------------

SOCKET_BYTES = {
    "bcc": """
        struct bytes { u64 sent; u64 received; };
        BPF_SK_STORAGE(per_socket, struct bytes);
        static int count(struct __sk_buff *skb, int egress) {
            struct bpf_sock *sk = skb->sk;
            if (!sk)
                return 1;
            sk = bpf_sk_fullsock(sk);
            if (!sk)
                return 1;
            struct bytes *b = per_socket.sk_storage_get(sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
            if (b && egress)
                __sync_fetch_and_add(&b->sent, skb->len);
            else if (b)
                __sync_fetch_and_add(&b->received, skb->len);
            return 1;
        }
        int on_egress(struct __sk_buff *skb) { return count(skb, 1); }
        int on_ingress(struct __sk_buff *skb) { return count(skb, 0); }
    """,
    "libbpf": libbpf_cell("""
        struct bytes { __u64 sent; __u64 received; };
        struct {
            __uint(type, BPF_MAP_TYPE_SK_STORAGE);
            __uint(map_flags, BPF_F_NO_PREALLOC);
            __type(key, int);
            __type(value, struct bytes);
        } per_socket SEC(".maps");
        static int count(struct __sk_buff *skb, int egress) {
            struct bpf_sock *sk = skb->sk;
            if (!sk)
                return 1;
            sk = bpf_sk_fullsock(sk);
            if (!sk)
                return 1;
            struct bytes *b = bpf_sk_storage_get(&per_socket, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
            if (b && egress)
                __sync_fetch_and_add(&b->sent, skb->len);
            else if (b)
                __sync_fetch_and_add(&b->received, skb->len);
            return 1;
        }
        SEC("cgroup_skb/egress") int on_egress(struct __sk_buff *skb) { return count(skb, 1); }
        SEC("cgroup_skb/ingress") int on_ingress(struct __sk_buff *skb) { return count(skb, 0); }
    """),
}

TALKER = """
import socket, sys, time
listener = socket.create_server(("127.0.0.1", 0))
client = socket.create_connection(listener.getsockname())
server, _ = listener.accept()
client.sendall(b"x" * 10000)
got = 0
while got < 10000:
    got += len(server.recv(65536))
print(client.getsockname()[1], server.getsockname()[1], flush=True)
time.sleep(30)
"""


@pytest.mark.parametrize("engine", ENGINES)
def test_sk_storage_counts_each_sockets_bytes(engine, cgroup, no_leaks):
    if engine == "libbpf":
        probes = [bpfnb.Probe("cgroup", str(cgroup))]  # every cgroup program, each by its SEC()
    else:
        probes = [
            bpfnb.Probe("cgroup", str(cgroup), "on_egress", (("type", "egress"),)),
            bpfnb.Probe("cgroup", str(cgroup), "on_ingress", (("type", "ingress"),)),
        ]
    with bpfnb.Program(SOCKET_BYTES[engine], probes=probes) as program:
        assert sorted(attached_to(cgroup)) == ["cgroup_inet_egress", "cgroup_inet_ingress"]
        with started_in(cgroup, TALKER) as (talker, ports):
            client_port, server_port = ports.split()
            frame = program["per_socket"].df(pids=[talker.pid])
            assert set(frame.pid) == {talker.pid}
            client = frame[frame.local == f"127.0.0.1:{client_port}"].iloc[0]
            server = frame[(frame.local == f"127.0.0.1:{server_port}") & (frame.remote != "")].iloc[0]
            # 10000 bytes of payload, plus the headers of a few segments.
            assert 10000 < client.sent < 10400 and 10000 < server.received < 10400
            assert client.received < 400 and server.sent < 400
            cookie = int(client.cookie)
            assert program["per_socket"].df().set_index("cookie").loc[cookie, "sent"] == client.sent
    assert attached_to(cgroup) == []


# -- the other cgroup hooks: sock_create, bind4, sendmsg4, getsockopt, sysctl ----------------

RETURN_1 = struct.pack("<BBhi", 0xB7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)  # r0 = 1; exit


def skip_unless_the_kernel_links(cgroup: Path, prog_type: str, attach_type: str) -> None:
    """Skip, with the kernel's reason, unless it loads ``r0 = 1; exit`` as ``prog_type`` and links it as ``attach_type``."""
    fd, err, log = prog_load(PROG_TYPES[prog_type], RETURN_1, expected_attach_type=ATTACH_TYPES[attach_type])
    if fd < 0:
        pytest.skip(f"this kernel loads no {prog_type} program for {attach_type}: {os.strerror(err)} {log.strip()}")
    group = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.close(link_create(fd, group, ATTACH_TYPES[attach_type]))
    except OSError as exc:
        pytest.skip(f"this kernel links no {attach_type} program to a cgroup: {exc.strerror}")
    finally:
        os.close(group)
        os.close(fd)


# Each hook counts the calls it matches in calls[0] and denies one kind (the kernel then says EPERM).
HOOK_BCC = """
    BPF_ARRAY(calls, u64, 1);
    int hook(CTX *ctx) {
        if (!(MATCH))
            return 1;
        calls.increment(0);
        return (DENY) ? 0 : 1;
    }
"""
HOOK_LIBBPF = """
    struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } calls SEC(".maps");
    SEC("cgroup/HOOK_TYPE")
    int hook(CTX *ctx) {
        if (!(MATCH))
            return 1;
        __u32 zero = 0;
        __u64 *n = bpf_map_lookup_elem(&calls, &zero);
        if (n)
            __sync_fetch_and_add(n, 1);
        return (DENY) ? 0 : 1;
    }
"""

# type: (program type, attach type as bpftool names it, context, what to count, what to deny,
#        a workload making three allowed calls, the call the hook denies).
CGROUP_HOOK_CASES = {
    "sock_create": (
        "cgroup_sock",
        "cgroup_inet_sock_create",
        "struct bpf_sock",
        "1",
        "ctx->type == 2 /* SOCK_DGRAM */",
        "kept = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]",
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
    ),
    "bind4": (
        "cgroup_sock_addr",
        "cgroup_inet4_bind",
        "struct bpf_sock_addr",
        "1",
        "ctx->user_ip4 == bpf_htonl(0x7f000002) /* 127.0.0.2 */",
        "kept = [socket.socket() for _ in range(3)]\nfor s in kept: s.bind(('127.0.0.1', 0))",
        "socket.socket().bind(('127.0.0.2', 0))",
    ),
    "sendmsg4": (
        "cgroup_sock_addr",
        "cgroup_udp4_sendmsg",
        "struct bpf_sock_addr",
        "1",
        "ctx->user_ip4 == bpf_htonl(0x7f000002) /* 127.0.0.2 */",
        "inbox, out = socket.socket(type=socket.SOCK_DGRAM), socket.socket(type=socket.SOCK_DGRAM)\n"
        "inbox.bind(('127.0.0.1', 0)); inbox.settimeout(5)\n"
        "for i in range(3): out.sendto(b'%d' % i, inbox.getsockname())\n"
        "assert [inbox.recv(10) for _ in range(3)] == [b'0', b'1', b'2']",
        "out.sendto(b'x', ('127.0.0.2', 9))",
    ),
    "getsockopt": (
        "cgroup_sockopt",
        "cgroup_getsockopt",
        "struct bpf_sockopt",
        "ctx->level == 1 /* SOL_SOCKET */",
        "ctx->optname == 8 /* SO_RCVBUF */",
        "s = socket.socket()\nfor _ in range(3): assert s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM",
        "s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)",
    ),
    "sysctl": (
        "cgroup_sysctl",
        "cgroup_sysctl",
        "struct bpf_sysctl",
        "1",
        "ctx->write",
        # One read() each (a buffered read would read again to find the end), then write back what was read.
        "for _ in range(3):\n"
        "    fd = os.open('/proc/sys/net/ipv4/ip_forward', os.O_RDONLY); value = os.read(fd, 16); os.close(fd)\n"
        "fd = os.open('/proc/sys/net/ipv4/ip_forward', os.O_WRONLY)",
        "os.write(fd, value)",
    ),
}

HOOK_WORKLOAD = """
import errno, os, socket
{allowed}
try:
    {denied}
except OSError as e:
    print(errno.errorcode[e.errno])
else:
    print("allowed")
"""


@pytest.mark.parametrize("hook", CGROUP_HOOK_CASES)
@pytest.mark.parametrize("engine", ENGINES)
def test_a_cgroup_hook_counts_and_denies_the_calls_made_inside_the_cgroup(engine, hook, cgroup, no_leaks):
    prog_type, attach_type, context, match, deny, allowed, denied = CGROUP_HOOK_CASES[hook]
    skip_unless_the_kernel_links(cgroup, prog_type, attach_type)
    template = libbpf_cell(HOOK_LIBBPF) if engine == "libbpf" else textwrap.dedent(HOOK_BCC)
    source = template.replace("HOOK_TYPE", hook).replace("CTX", context).replace("MATCH", match).replace("DENY", deny)
    # A libbpf cell takes the hook from SEC() (--cgroup PATH alone); a BCC function is told.
    spec = str(cgroup) if engine == "libbpf" else f"{cgroup}=hook,type={hook}"
    workload = HOOK_WORKLOAD.format(allowed=allowed, denied=denied)
    with bpfnb.Program(source, probes=[bpfnb.Probe.parse("cgroup", spec)]) as program:
        assert attached_to(cgroup) == [attach_type]
        assert [str(p) for p in program.attachments] == [f"cgroup {cgroup},type={hook} -> hook"]
        inside = run_in(cgroup, workload)
        assert (inside.stdout, inside.returncode) == ("EPERM\n", 0), inside.stderr
        assert program["calls"][0] == 4
    assert attached_to(cgroup) == []
    after = run_in(cgroup, workload)
    assert (after.stdout, after.returncode) == ("allowed\n", 0), after.stderr


# -- sockmaps: sk_skb and sk_msg -------------------------------------------------------

#: The sockmap of the libbpf cells below: two sockets, at keys 0 and 1.
TWO_SOCKETS = """
        struct {
            __uint(type, BPF_MAP_TYPE_SOCKMAP);
            __uint(max_entries, 2);
            __type(key, __u32);
            __type(value, __u64);
        } sockets SEC(".maps");
"""

SPLICE = {
    # BCC passes a map to a helper only through the map's own methods: sockhashes have sk_redirect_hash.
    "bcc": """
        BPF_SOCKHASH(sockets, u32, 2);
        int splice(struct __sk_buff *skb) {
            u32 other = skb->local_port == PROXY ? 1 : 0;
            return sockets.sk_redirect_hash(skb, &other, 0);
        }
    """,
    "libbpf": libbpf_cell(TWO_SOCKETS + """
        SEC("sk_skb/stream_verdict")
        int splice(struct __sk_buff *skb) {
            return bpf_sk_redirect_map(skb, &sockets, skb->local_port == PROXY ? 1 : 0, 0);
        }
    """),
}


def connected_pair(listener: socket.socket) -> tuple[socket.socket, socket.socket]:
    near = socket.create_connection(listener.getsockname(), timeout=5)
    far, _ = listener.accept()
    far.settimeout(5)
    return near, far


@pytest.mark.parametrize("engine", ENGINES)
def test_sk_skb_verdict_splices_two_connections(engine, no_leaks):
    """Bytes that reach the proxy's first socket leave by its second, with no read or write by the proxy."""
    front_listener, back_listener = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    proxy_port = front_listener.getsockname()[1]
    client, proxy_front = connected_pair(front_listener)
    proxy_back, server = connected_pair(back_listener)
    source = SPLICE[engine].replace("PROXY", str(proxy_port))
    probe = bpfnb.Probe("sk_skb", "sockets", "splice", (("type", "verdict"),))
    with bpfnb.Program(source, probes=[probe]) as program:
        sockets = program["sockets"]
        sockets.set(0, proxy_front)
        sockets.set(1, proxy_back)
        frame = sockets.df()
        assert sorted(frame.key) == [0, 1]
        if engine == "libbpf":  # 8-byte values: the kernel reads back each socket's cookie
            assert frame.cookie.tolist() == [socket_cookie(proxy_front.fileno()), socket_cookie(proxy_back.fileno())]
            assert set(frame.pid) == {os.getpid()}
            assert frame.local.tolist() == [f"127.0.0.1:{proxy_port}", f"127.0.0.1:{proxy_back.getsockname()[1]}"]
        else:
            assert "cookie" not in frame and "8-byte values" in frame.attrs["note"]
        client.sendall(b"through the splice")
        assert server.recv(100) == b"through the splice"
        server.sendall(b"and back")
        assert client.recv(100) == b"and back"
    # Detached: the proxy's sockets are plain sockets again.
    client.sendall(b"to the proxy")
    proxy_front.settimeout(5)
    assert proxy_front.recv(100) == b"to the proxy"
    for s in (client, proxy_front, proxy_back, server, front_listener, back_listener):
        s.close()


FRAMED_SPLICE = {
    "bcc": """
        BPF_SOCKHASH(sockets, u32, 2);
        BPF_ARRAY(runs, u64, 2);  // 0: the parser's, 1: the verdict's
        int parse(struct __sk_buff *skb) {
            runs.increment(0);
            return RECORD;
        }
        int splice(struct __sk_buff *skb) {
            runs.increment(1);
            u32 other = skb->local_port == PROXY ? 1 : 0;
            return sockets.sk_redirect_hash(skb, &other, 0);
        }
    """,
    "libbpf": libbpf_cell(TWO_SOCKETS + """
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u64); } runs SEC(".maps");
        static void ran(__u32 which) {
            __u64 *n = bpf_map_lookup_elem(&runs, &which);
            if (n)
                __sync_fetch_and_add(n, 1);
        }
        SEC("sk_skb/stream_parser")
        int parse(struct __sk_buff *skb) {
            ran(0);
            return RECORD;
        }
        SEC("sk_skb/stream_verdict")
        int splice(struct __sk_buff *skb) {
            ran(1);
            return bpf_sk_redirect_map(skb, &sockets, skb->local_port == PROXY ? 1 : 0, 0);
        }
    """),
}


def received(sock: socket.socket, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += sock.recv(size - len(got))
    return got


@pytest.mark.parametrize("engine", ENGINES)
def test_sk_skb_parser_frames_what_the_verdict_splices(engine, no_leaks):
    """The parser cuts the stream into 16-byte records; the verdict sees, and splices, whole records only."""
    front_listener, back_listener = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))
    client, proxy_front = connected_pair(front_listener)
    proxy_back, server = connected_pair(back_listener)
    source = FRAMED_SPLICE[engine].replace("PROXY", str(front_listener.getsockname()[1])).replace("RECORD", "16")
    probes = [
        bpfnb.Probe.parse("sk_skb", "sockets=parse,type=parser"),
        bpfnb.Probe.parse("sk_skb", "sockets=splice,type=verdict"),
    ]
    with contextlib.ExitStack() as sockets:
        for s in (client, proxy_front, proxy_back, server, front_listener, back_listener):
            sockets.enter_context(s)
        try:
            program = bpfnb.Program(source, probes=probes)
        except bpfnb.AttachError as error:
            if "Operation not supported" in error.message:  # a kernel without CONFIG_BPF_STREAM_PARSER
                pytest.skip(error.message)
            raise
        with program:
            assert [str(p) for p in program.attachments] == [
                "sk_skb sockets,type=parser -> parse",
                "sk_skb sockets,type=verdict -> splice",
            ]
            runs = program["runs"]  # [parser runs, verdict runs]
            program["sockets"].set(0, proxy_front)
            program["sockets"].set(1, proxy_back)
            records = b"".join(b"record %-9d" % i for i in range(5))
            client.sendall(records)  # one segment: the parser, not TCP, makes five messages of it
            assert received(server, 80) == records
            assert (runs[0], runs[1]) == (5, 5)
            server.sendall(records[:48])
            assert received(client, 48) == records[:48]
            assert (runs[0], runs[1]) == (8, 8)
            # Half a record: the parser has said 16 bytes, so the verdict waits for the rest.
            client.sendall(b"half a r")
            deadline = time.monotonic() + 5
            while runs[0] == 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert (runs[0], runs[1]) == (9, 8)
            assert select.select([server], [], [], 0.05)[0] == []
            client.sendall(b"ecord 99")
            assert received(server, 16) == b"half a record 99"
            assert (runs[0], runs[1]) == (9, 9)
        # Detached: the proxy's sockets are plain sockets again.
        client.sendall(b"to the proxy")
        assert received(proxy_front, 12) == b"to the proxy"


SK_MSG = {
    "bcc": """
        BPF_SOCKHASH(sockets, u32, 4);
        BPF_ARRAY(sent, u64, 1);
        int count_sends(struct sk_msg_md *msg) {
            sent.increment(0, msg->size);
            return SK_PASS;
        }
    """,
    "libbpf": libbpf_cell("""
        struct {
            __uint(type, BPF_MAP_TYPE_SOCKHASH);
            __uint(max_entries, 4);
            __type(key, __u32);
            __type(value, __u64);
        } sockets SEC(".maps");
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } sent SEC(".maps");
        SEC("sk_msg")
        int count_sends(struct sk_msg_md *msg) {
            __u32 zero = 0;
            __u64 *n = bpf_map_lookup_elem(&sent, &zero);
            if (n)
                __sync_fetch_and_add(n, msg->size);
            return SK_PASS;
        }
    """),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_sk_msg_sees_every_send_of_a_socket_in_the_map(engine, no_leaks):
    listener = socket.create_server(("127.0.0.1", 0))
    near, far = connected_pair(listener)
    with bpfnb.Program(SK_MSG[engine], probes=[bpfnb.Probe("sk_msg", "sockets", "count_sends")]) as program:
        program["sockets"].set(7, near)
        assert list(program["sockets"]) == [7]
        for size in (100, 2000, 5):
            near.sendall(b"m" * size)
        got = b""
        while len(got) < 2105:
            got += far.recv(4096)
        assert program["sent"][0] == 2105
    for s in (near, far, listener):
        s.close()


@pytest.mark.parametrize("engine", ENGINES)
def test_a_bpf_cell_attaches_sk_msg_to_its_sockhash(engine, no_leaks):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "bpfnb")
    listener = socket.create_server(("127.0.0.1", 0))
    near, far = connected_pair(listener)
    try:
        assert shell.run_cell("%%bpf sends --sk-msg sockets=count_sends\n" + textwrap.dedent(SK_MSG[engine])).success
        program = shell.user_ns["sends"]
        assert program.engine == engine
        assert [str(p) for p in program.attachments] == ["sk_msg sockets -> count_sends"]
        program["sockets"].set(7, near)
        for size in (100, 2000, 5):
            near.sendall(b"m" * size)
        assert received(far, 2105) == b"m" * 2105
        assert program["sent"][0] == 2105
        prog_ids = set(program.stats().prog_id)
        shell.run_line_magic("bpf", "detach sends")
        assert program.closed and program.attachments == []
        # The socket, still open, left the map: nothing in the kernel holds the program any more.
        deadline = time.monotonic() + 3
        while prog_ids & kernel_prog_ids() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not prog_ids & kernel_prog_ids()
        near.sendall(b"after")
        assert received(far, 5) == b"after"
    finally:
        for s in (near, far, listener):
            s.close()
        shell.run_line_magic("unload_ext", "bpfnb")
        InteractiveShell.clear_instance()


def test_a_bcc_sockmap_without_cookies_says_how_to_see_them(no_leaks):
    source = "BPF_SOCKMAP(sockets, 2);\nint verdict(struct __sk_buff *skb) { return SK_PASS; }\n"
    with bpfnb.Program(source, probes=[bpfnb.Probe("sk_skb", "sockets", "verdict")]) as program:
        with pytest.raises(bpfnb.UnsupportedMapError) as error:
            program["sockets"].df()
        assert 'BPF_TABLE("sockmap", u32, u64' in (error.value.hint or "")


def test_sk_skb_on_a_map_that_is_not_a_sockmap_is_refused(no_leaks):
    source = "BPF_ARRAY(counts, u64, 1);\nint verdict(struct __sk_buff *skb) { return SK_PASS; }\n"
    with pytest.raises(bpfnb.AttachError, match="attach to a sockmap or sockhash; counts is a array"):
        bpfnb.Program(source, probes=[bpfnb.Probe("sk_skb", "counts", "verdict")])


# -- sk_lookup --------------------------------------------------------------------------

STEER = {
    "bcc": """
        BPF_TABLE("sockmap", u32, u64, listener, 1);
        BPF_ARRAY(steered, u64, 1);
        int steer(struct bpf_sk_lookup *ctx) {
            if (ctx->local_port < 7000 || ctx->local_port > 7099)
                return SK_PASS;
            u32 zero = 0;
            struct bpf_sock *sk = listener.lookup(&zero);
            if (!sk)
                return SK_PASS;
            long err = bpf_sk_assign(ctx, sk, 0);
            bpf_sk_release(sk);
            if (!err)
                steered.increment(zero);
            return err ? SK_DROP : SK_PASS;
        }
    """,
    "libbpf": libbpf_cell("""
        struct { __uint(type, BPF_MAP_TYPE_SOCKMAP); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } listener SEC(".maps");
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); } steered SEC(".maps");
        SEC("sk_lookup")
        int steer(struct bpf_sk_lookup *ctx) {
            if (ctx->local_port < 7000 || ctx->local_port > 7099)
                return SK_PASS;
            __u32 zero = 0;
            struct bpf_sock *sk = bpf_map_lookup_elem(&listener, &zero);
            if (!sk)
                return SK_PASS;
            long err = bpf_sk_assign(ctx, sk, 0);
            bpf_sk_release(sk);
            __u64 *n = bpf_map_lookup_elem(&steered, &zero);
            if (!err && n)
                __sync_fetch_and_add(n, 1);
            return err ? SK_DROP : SK_PASS;
        }
    """),
}


@pytest.mark.parametrize("engine", ENGINES)
def test_sk_lookup_steers_a_port_range_to_one_listener(engine, netns, no_leaks):
    with entered(netns):
        listener = socket.create_server(("127.0.0.1", 7777))
    with listener, bpfnb.Program(STEER[engine], probes=[bpfnb.Probe("sk_lookup", netns, "steer")]) as program:
        program["listener"].set(0, listener)
        with entered(netns):
            for port in (7000, 7042, 7099):
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    accepted, _ = listener.accept()
                    assert accepted.getsockname() == ("127.0.0.1", port)
                    accepted.close()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", 7100), timeout=5)
        assert program["steered"][0] == 3
    with entered(netns), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", 7042), timeout=5)


def test_sk_lookup_on_a_missing_namespace_says_how_to_make_one(no_leaks):
    with pytest.raises(bpfnb.AttachError) as error:
        bpfnb.Program(STEER["libbpf"], probes=[bpfnb.Probe("sk_lookup", "bpfnb-no-such-netns", "steer")])
    assert error.value.hint == "create one with: ip netns add bpfnb-no-such-netns"


# -- task and cgroup storage -------------------------------------------------------------

PER_TASK = libbpf_cell("""
    struct { __uint(type, BPF_MAP_TYPE_TASK_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } per_task SEC(".maps");
    struct { __uint(type, BPF_MAP_TYPE_CGRP_STORAGE); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, int); __type(value, __u64); } per_cgroup SEC(".maps");
    SEC("tp/syscalls/sys_enter_getppid")
    int count(void *ctx) {
        struct task_struct *task = bpf_get_current_task_btf();
        __u64 *calls = bpf_task_storage_get(&per_task, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (calls)
            __sync_fetch_and_add(calls, 1);
        calls = bpf_cgrp_storage_get(&per_cgroup, task->cgroups->dfl_cgrp, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
        if (calls)
            __sync_fetch_and_add(calls, 1);
        return 0;
    }
""")


def test_task_and_cgroup_storage_read_as_frames(cgroup, no_leaks):
    code = "import os, sys, time\nfor _ in range(250): os.getppid()\nprint(flush=True)\ntime.sleep(30)\n"
    with bpfnb.Program(PER_TASK) as program, started_in(cgroup, code) as (child, _):
        tasks = program["per_task"].df()
        row = tasks[tasks.tid == child.pid].iloc[0]
        assert (row.pid, row.value) == (child.pid, 250)
        assert program["per_task"][child.pid] == 250
        groups = program["per_cgroup"].df().set_index("cgroup")
        assert groups.loc["/" + cgroup.name, "value"] == 250
        assert program["per_cgroup"][str(cgroup)] == 250
        assert groups.loc["/" + cgroup.name, "cgroup_id"] == cgroup.stat().st_ino


def test_a_bcc_map_passed_by_address_gets_a_hint_about_methods(no_leaks):
    source = "BPF_SOCKHASH(sockets, u32, 2);\nint splice(struct __sk_buff *skb) { return bpf_sk_redirect_map(skb, &sockets, 0, 0); }\n"
    with pytest.raises(bpfnb.LoadError) as error:
        bpfnb.Program(source, probes=[bpfnb.Probe("sk_skb", "sockets", "splice")])
    assert "expected=map_ptr" in error.value.message
    assert "sockets.sk_redirect_hash(skb, &key, 0)" in (error.value.hint or "")
