"""Hosts for the cluster tests, all on this machine: network namespaces, an ipyparallel controller, engines.

The topology (every address lives in a namespace the test creates)::

    test process (root namespace) 10.213.254.1 --veth-- 10.213.254.2  controller namespace
                                                               lo: 10.213.0.1 (the controller's address)
    host i namespace 10.213.i.2 --veth-- 10.213.i.1 ------------------+

Each engine runs in its host's network namespace, with its own hostname (a UTS
namespace) and its own mount namespace, in which ``/run/bpfnb-test-host`` holds
``host.h``: the id of the cgroup v2 group that host's workloads run in, and
``cgroup``: that group itself (for bpftrace's ``cgroupid()``). All engines
share this machine's kernel, so a tracepoint on one engine sees every process;
cells include ``host.h`` (bpftrace scripts compare ``cgroup`` with
``cgroupid("/run/bpfnb-test-host/cgroup")``) to count only their own host's
workload, as a real host only ever sees its own processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Where each engine sees its own host.h (an include directory for cells).
HOST_INCLUDE = Path("/run/bpfnb-test-host")
CGROUP_ROOT = Path("/sys/fs/cgroup/unified")
_NET = "10.213"


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit status {done.returncode}'}")


@dataclass
class Host:
    """One emulated host: a namespace, a veth to the controller, a cgroup, an engine."""

    index: int
    name: str
    netns: str
    veth: str  # the controller's end (set down to cut the host off)
    cgroup: Path
    include: Path
    engine: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def cgroup_id(self) -> int:
        return os.stat(self.cgroup).st_ino

    def run_workload(self, binary: Path, *args: str) -> subprocess.Popen[bytes]:
        """Start ``binary`` in this host's namespace and cgroup."""
        return subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "sh", "-c",
             f'echo $$ > {self.cgroup}/cgroup.procs && exec "$0" "$@"', str(binary), *args],
            stdin=subprocess.DEVNULL,
        )


@dataclass
class Cluster:
    """The controller and hosts of a test; :func:`cluster_hosts` builds and removes it."""

    tag: str
    directory: Path
    controller_ns: str
    hosts: list[Host] = field(default_factory=list)
    controller: subprocess.Popen[bytes] | None = None

    @property
    def url_file(self) -> Path:
        return self.directory / "profile" / "security" / "ipcontroller-client.json"

    def start_engine(self, host: Host, *, keep: bool = False) -> subprocess.Popen[bytes]:
        """Start (or restart) ``host``'s engine and return its process; ``keep``: an extra engine, host.engine stays."""
        engine_file = self.directory / "profile" / "security" / "ipcontroller-engine.json"
        script = (
            f"hostname {host.name} && mount --bind {host.include} {HOST_INCLUDE} && "
            f"mount --bind {host.cgroup} {HOST_INCLUDE}/cgroup && "
            f'exec "$0" -m ipyparallel.engine --profile-dir="$1" --file="$2" '
            "--IPEngine.max_heartbeat_misses=0 --IPEngine.use_nanny=False"
        )
        host.log = self.directory / f"engine-{host.name}.log"
        with host.log.open("ab") as log:
            engine = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{host.netns}", "unshare", "--uts", "--mount", "--propagation", "private",
                 "sh", "-c", script, sys.executable, str(self.directory / "profile"), str(engine_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not keep:
            host.engine = engine
        return engine

    def kill_engine(self, host: Host) -> None:
        """Kill ``host``'s engine at once, as a crash would."""
        assert host.engine is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.engine.pid, signal.SIGKILL)
        host.engine.wait()

    def cut(self, host: Host, *, up: bool = False) -> None:
        """Take ``host``'s link down (or up again)."""
        _run("ip", "-n", self.controller_ns, "link", "set", host.veth, "up" if up else "down")


def _running(pid: str) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _remove_stale_hosts() -> None:
    """Remove the namespaces and cgroups of earlier runs that were killed before they could clean up.

    Their addresses and routes would otherwise shadow this run's: the kernel
    keeps the first route to a prefix, and that one leads into a dead namespace.
    Names carry the pid of the process that made them, so a live run is left alone.
    """
    for link in Path("/sys/class/net").glob("bnr*"):
        owner = link.name.removeprefix("bnr")
        if owner.isdigit() and not _running(owner):
            # Deleted here, not with its namespace, which the kernel frees later, routes and all.
            subprocess.run(["ip", "link", "del", link.name], capture_output=True)
    netns_dir = Path("/run/netns")
    names = [p.name for p in netns_dir.iterdir()] if netns_dir.exists() else []
    for name in names:
        owner = name.removeprefix("bpfnbc").removeprefix("bpfnbh").split("-")[0]
        if name.startswith(("bpfnbc", "bpfnbh")) and owner.isdigit() and not _running(owner):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
    for base in CGROUP_ROOT.glob("bpfnb-test-*"):
        owner = base.name.removeprefix("bpfnb-test-")
        if owner.isdigit() and not _running(owner):
            for group in base.iterdir():
                if group.is_dir():
                    _kill_cgroup(group)
            with contextlib.suppress(OSError):
                base.rmdir()


@contextlib.contextmanager
def cluster_hosts(directory: Path, count: int, *, heartbeat_ms: int = 1000, misses: int = 30) -> Iterator[Cluster]:
    """``count`` hosts with an engine each, and a controller; everything is removed on exit.

    ``heartbeat_ms`` and ``misses`` set how soon the controller gives up on a
    silent engine (the default, 30 s, outlasts the tests' link cuts).
    """
    _remove_stale_hosts()
    tag = str(os.getpid())
    cluster = Cluster(tag=tag, directory=directory, controller_ns=f"bpfnbc{tag}")
    root_veth = f"bnr{tag}"
    cgroup_base = CGROUP_ROOT / f"bpfnb-test-{tag}"
    try:
        _run("ip", "netns", "add", cluster.controller_ns)
        _run("ip", "link", "add", root_veth, "type", "veth", "peer", "name", "up0", "netns", cluster.controller_ns)
        _run("ip", "addr", "add", f"{_NET}.254.1/24", "dev", root_veth)
        _run("ip", "link", "set", root_veth, "up")
        _run("ip", "-n", cluster.controller_ns, "addr", "add", f"{_NET}.254.2/24", "dev", "up0")
        _run("ip", "-n", cluster.controller_ns, "link", "set", "up0", "up")
        _run("ip", "-n", cluster.controller_ns, "link", "set", "lo", "up")
        _run("ip", "-n", cluster.controller_ns, "addr", "add", f"{_NET}.0.1/32", "dev", "lo")
        _run("ip", "route", "add", f"{_NET}.0.1/32", "via", f"{_NET}.254.2", "dev", root_veth)
        HOST_INCLUDE.mkdir(exist_ok=True)
        cgroup_base.mkdir()
        for i in range(1, count + 1):
            host = Host(
                index=i,
                name=f"h{i}",
                netns=f"bpfnbh{tag}-{i}",
                veth=f"down{i}",
                cgroup=cgroup_base / f"h{i}",
                include=directory / f"include-h{i}",
            )
            _run("ip", "netns", "add", host.netns)
            _run("ip", "-n", cluster.controller_ns, "link", "add", host.veth, "type", "veth",
                 "peer", "name", "eth0", "netns", host.netns)
            _run("ip", "-n", cluster.controller_ns, "addr", "add", f"{_NET}.{i}.1/24", "dev", host.veth)
            _run("ip", "-n", cluster.controller_ns, "link", "set", host.veth, "up")
            _run("ip", "-n", host.netns, "addr", "add", f"{_NET}.{i}.2/24", "dev", "eth0")
            _run("ip", "-n", host.netns, "link", "set", "eth0", "up")
            _run("ip", "-n", host.netns, "link", "set", "lo", "up")
            _run("ip", "-n", host.netns, "route", "add", "default", "via", f"{_NET}.{i}.1")
            host.cgroup.mkdir()
            host.include.mkdir()
            (host.include / "host.h").write_text(f"#define HOST_CGROUP {host.cgroup_id}ULL\n")
            (host.include / "cgroup").mkdir()
            cluster.hosts.append(host)
        _start_controller(cluster, heartbeat_ms=heartbeat_ms, misses=misses)
        for host in cluster.hosts:
            cluster.start_engine(host)
        yield cluster
    finally:
        for host in cluster.hosts:
            if host.engine is not None and host.engine.poll() is None:
                cluster.kill_engine(host)
        if cluster.controller is not None:
            cluster.controller.terminate()
            try:
                cluster.controller.wait(10)
            except subprocess.TimeoutExpired:
                cluster.controller.kill()
                cluster.controller.wait()
        for host in cluster.hosts:
            _kill_cgroup(host.cgroup)
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", root_veth], capture_output=True)
        subprocess.run(["ip", "netns", "del", cluster.controller_ns], capture_output=True)
        with contextlib.suppress(OSError):
            cgroup_base.rmdir()


def _start_controller(cluster: Cluster, *, heartbeat_ms: int, misses: int) -> None:
    profile = cluster.directory / "profile"
    with (cluster.directory / "controller.log").open("ab") as log:
        cluster.controller = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{cluster.controller_ns}", sys.executable, "-m", "ipyparallel.controller",
             f"--profile-dir={profile}", "--ip=0.0.0.0", f"--location={_NET}.0.1",
             f"--HeartMonitor.period={heartbeat_ms}", f"--HeartMonitor.max_heartmonitor_misses={misses}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while not (cluster.url_file.exists() and (profile / "security" / "ipcontroller-engine.json").exists()):
        if cluster.controller.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the controller did not start: {(cluster.directory / 'controller.log').read_text()}")
        time.sleep(0.1)
    json.loads(cluster.url_file.read_text())  # complete, not half written


def _kill_cgroup(cgroup: Path) -> None:
    if not cgroup.exists():
        return
    with contextlib.suppress(OSError):
        (cgroup / "cgroup.kill").write_text("1")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            cgroup.rmdir()
            return
        except OSError:
            time.sleep(0.05)
