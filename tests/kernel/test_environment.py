"""Reading this machine's facts: parsers and readers on recorded texts and temporary trees."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from bpfnb.kernel import environment as env

# /proc/self/status of a root shell on the project's VM (capability lines only).
ROOT_STATUS = """\
Name:\tcat
Uid:\t0\t0\t0\t0
CapInh:\t0000000000000000
CapPrm:\t000001ffffffffff
CapEff:\t000001ffffffffff
CapBnd:\t000001ffffffffff
"""

# Excerpt of the VM's /proc/config.gz.
CONFIG = """\
CONFIG_BPF_SYSCALL=y
# CONFIG_KPROBES is not set
CONFIG_UPROBES=y
CONFIG_XDP_SOCKETS=m
CONFIG_LSM="landlock,lockdown,yama"
CONFIG_SECURITY_LOCKDOWN_LSM=y
CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y
# CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY is not set
"""

# /proc/mounts on the VM, plus a mount point with a space (escaped as \040).
MOUNTS = """\
proc /proc proc rw,relatime 0 0
none /sys/kernel/debug debugfs rw,relatime 0 0
none /sys/kernel/tracing tracefs rw,relatime 0 0
bpf /sys/fs/bpf bpf rw,relatime 0 0
tracefs /sys/kernel/debug/tracing tracefs rw,relatime 0 0
/dev/vdb /mnt/my\\040disk ext4 rw 0 0
"""


def status_with_mask(mask: int) -> str:
    return f"Name:\tpython\nCapEff:\t{mask:016x}\n"


@pytest.mark.parametrize(
    ("status", "expected", "allowed"),
    [
        (ROOT_STATUS, {"CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_PERFMON", "CAP_BPF"}, True),
        (status_with_mask(0), set(), False),
        (status_with_mask(1 << 38 | 1 << 39), {"CAP_PERFMON", "CAP_BPF"}, True),
        (status_with_mask(1 << 39), {"CAP_BPF"}, False),
        (status_with_mask(1 << 21), {"CAP_SYS_ADMIN"}, True),
        (status_with_mask(1 << 12 | 1 << 38), {"CAP_NET_ADMIN", "CAP_PERFMON"}, False),
    ],
)
def test_capabilities_from_the_effective_mask(status, expected, allowed):
    caps = env.parse_capabilities(status)
    assert caps == expected
    assert env.can_use_bpf(caps) is allowed


def test_only_the_effective_mask_counts():
    status = "CapPrm:\t000001ffffffffff\nCapEff:\t0000000000000000\n"
    assert env.parse_capabilities(status) == frozenset()
    assert "CAP_BPF" in env.parse_capabilities(status, field="CapPrm")


def test_effective_capabilities_reads_the_status_file(tmp_path):
    status = tmp_path / "status"
    status.write_text(status_with_mask(1 << 38 | 1 << 39))
    assert env.effective_capabilities(status_path=str(status)) == {"CAP_BPF", "CAP_PERFMON"}


def test_parse_kernel_config():
    options = env.parse_kernel_config(CONFIG)
    assert options["CONFIG_BPF_SYSCALL"] == "y"
    assert options["CONFIG_KPROBES"] == "n"
    assert options["CONFIG_XDP_SOCKETS"] == "m"
    assert options["CONFIG_LSM"] == "landlock,lockdown,yama"
    assert "CONFIG_FPROBE" not in options


def test_kernel_config_reads_gzip_then_falls_back(tmp_path):
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(CONFIG.encode()))
    plain = tmp_path / "config-6.18"
    plain.write_text("CONFIG_KPROBES=y\n")
    missing = str(tmp_path / "nope.gz")

    path, options = env.kernel_config(paths=[missing, str(gz), str(plain)])
    assert path == str(gz) and options["CONFIG_KPROBES"] == "n"
    path, options = env.kernel_config(paths=[missing, str(plain)])
    assert path == str(plain) and options["CONFIG_KPROBES"] == "y"
    assert env.kernel_config(paths=[missing]) is None


@pytest.mark.parametrize(
    ("text", "mode"),
    [("none [integrity] confidentiality\n", "integrity"), ("[none] integrity confidentiality", "none"), ("", None)],
)
def test_parse_lockdown(text, mode):
    assert env.parse_lockdown(text) == mode


def test_lockdown_is_read_from_securityfs_when_mounted(tmp_path):
    lockdown_file = tmp_path / "lockdown"
    lockdown_file.write_text("none integrity [confidentiality]\n")
    state = env.lockdown(path=str(lockdown_file), config={})
    assert state.mode == "confidentiality"
    assert str(lockdown_file) in state.source


def test_lockdown_is_inferred_from_config_and_boot_parameter(tmp_path):
    missing = str(tmp_path / "lockdown")
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("console=ttyS0 quiet\n")
    config = env.parse_kernel_config(CONFIG)

    state = env.lockdown(path=missing, config=config, cmdline_path=str(cmdline))
    assert state.mode == "integrity"
    assert "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y" in state.source

    cmdline.write_text("quiet lockdown=confidentiality\n")
    state = env.lockdown(path=missing, config=config, cmdline_path=str(cmdline))
    assert state.mode == "confidentiality"
    assert "lockdown=confidentiality" in state.source


def test_lockdown_without_the_lsm_or_any_clue(tmp_path):
    missing = str(tmp_path / "lockdown")
    no_cmdline = str(tmp_path / "cmdline")
    without_lsm = {"CONFIG_BPF_SYSCALL": "y", "CONFIG_SECURITY_LOCKDOWN_LSM": "n"}
    assert env.lockdown(path=missing, config=without_lsm, cmdline_path=no_cmdline).mode == "none"
    with_lsm = {"CONFIG_SECURITY_LOCKDOWN_LSM": "y"}
    assert env.lockdown(path=missing, config=with_lsm, cmdline_path=no_cmdline).mode == "unknown"


def test_parse_mounts_and_filter_by_type(tmp_path):
    parsed = env.parse_mounts(MOUNTS)
    assert parsed[-1] == env.Mount("/dev/vdb", "/mnt/my disk", "ext4")
    proc_mounts = tmp_path / "mounts"
    proc_mounts.write_text(MOUNTS)
    assert env.mounts("tracefs", mounts_path=str(proc_mounts)) == ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
    assert env.mounts("bpf", mounts_path=str(proc_mounts)) == ["/sys/fs/bpf"]
    assert env.mounts("securityfs", mounts_path=str(proc_mounts)) == []


def test_tracefs_dir_is_the_first_with_events(tmp_path):
    empty, mounted = tmp_path / "tracing", tmp_path / "debug-tracing"
    empty.mkdir()
    (mounted / "events").mkdir(parents=True)
    assert env.tracefs_dir(candidates=[str(empty), str(mounted)]) == str(mounted)
    assert env.tracefs_dir(candidates=[str(empty)]) is None


@pytest.mark.parametrize(
    ("release", "version"),
    [("6.18.44-fc-v509", (6, 18, 44)), ("5.15.0-91-generic", (5, 15, 0)), ("6.1", (6, 1, 0)), ("4.19.0+", (4, 19, 0))],
)
def test_kernel_version(release, version):
    assert env.kernel_version(release) == version


def make_debian_headers(src: Path, version: str, flavour: str = "amd64", *, sublevel: str = "192") -> Path:
    """A header tree laid out as Debian's linux-headers-<version>-<flavour> package."""
    common = src / f"linux-headers-{version}-common"
    common.mkdir(parents=True, exist_ok=True)
    major, minor = version.split(".")[:2]
    (common / "Makefile").write_text(f"# SPDX\nVERSION = {major}\nPATCHLEVEL = {minor}\nSUBLEVEL = {sublevel}\nEXTRAVERSION =\n")
    arch = src / f"linux-headers-{version}-{flavour}"
    (arch / "include/generated").mkdir(parents=True)
    (arch / "include/config").mkdir(parents=True)
    (arch / "include/generated/utsrelease.h").write_text(f'#define UTS_RELEASE "{version}-{flavour}"\n')
    (arch / "include/config/kernel.release").write_text(f"{major}.{minor}.{sublevel}\n")
    (arch / "Makefile").write_text(f"include {common}/Makefile\n")
    return arch


def test_headers_release_from_utsrelease_and_kernel_release(tmp_path):
    arch = make_debian_headers(tmp_path, "6.1.0-56")
    assert env.headers_release(str(arch)) == ("6.1.0-56-amd64", "6.1.192")


def test_headers_release_follows_debians_include_makefile(tmp_path):
    arch = make_debian_headers(tmp_path, "6.1.0-56")
    (arch / "include/config/kernel.release").unlink()
    assert env.headers_release(str(arch)) == ("6.1.0-56-amd64", "6.1.192")


def test_headers_release_from_the_directory_name(tmp_path):
    tree = tmp_path / "linux-headers-5.15.0-91-generic"
    tree.mkdir()
    link = tmp_path / "build"
    link.symlink_to(tree)
    assert env.headers_release(str(link)) == ("5.15.0-91-generic", None)
    assert env.headers_release(str(tmp_path / "elsewhere")) == (None, None)


def test_find_kernel_headers_through_the_build_link(tmp_path):
    arch = make_debian_headers(tmp_path / "src", "6.1.0-56")
    for release in ("6.1.0-56-amd64", "6.18.44-fc-v509"):
        (tmp_path / "modules" / release).mkdir(parents=True)
        (tmp_path / "modules" / release / "build").symlink_to(arch)
    kw = {"modules_root": str(tmp_path / "modules"), "environ": {}, "kheaders": str(tmp_path / "none")}

    own = env.find_kernel_headers(release="6.1.0-56-amd64", **kw)
    assert own.found and own.matches
    assert own.release == "6.1.0-56-amd64" and own.version == "6.1.192"

    other = env.find_kernel_headers(release="6.18.44-fc-v509", **kw)
    assert other.found and not other.matches
    assert other.describe() == "6.1.0-56-amd64, Linux 6.1.192"

    absent = env.find_kernel_headers(release="6.19.0", **kw)
    assert not absent.found and not absent.matches
    assert absent.origin.endswith("/6.19.0/build")


def test_find_kernel_headers_prefers_bcc_kernel_source_then_kheaders(tmp_path):
    arch = make_debian_headers(tmp_path / "src", "6.1.0-56")
    kheaders = tmp_path / "kheaders.tar.xz"
    kheaders.write_bytes(b"")
    kw = {"release": "6.18.44", "modules_root": str(tmp_path / "modules"), "kheaders": str(kheaders)}

    chosen = env.find_kernel_headers(environ={"BCC_KERNEL_SOURCE": str(arch)}, **kw)
    assert chosen.origin == "BCC_KERNEL_SOURCE" and chosen.path == str(arch)

    builtin = env.find_kernel_headers(environ={}, **kw)
    assert builtin.origin == "kheaders" and builtin.matches


def test_header_notice_says_which_headers_and_what_it_means():
    headers = env.find_kernel_headers()
    notice = env.header_notice()
    if not headers.found or headers.matches:
        assert notice is None
        return
    assert headers.release and headers.release in notice
    assert headers.running in notice
    assert "tracepoint `args` are right" in notice
    assert "LayoutError" in notice and "BPF_CORE_READ" in notice


def test_read_sysctl(tmp_path):
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "bpf_stats_enabled").write_text("1\n")
    assert env.read_sysctl("kernel.bpf_stats_enabled", root=str(tmp_path)) == "1"
    assert env.read_sysctl("kernel.nothing", root=str(tmp_path)) is None


def test_memlock_limit_follows_the_soft_limit():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    lowered = 64 * 1024 if hard == resource.RLIM_INFINITY else min(hard, 64 * 1024)
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (lowered, hard))
    try:
        assert env.memlock_limit() == lowered
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (soft, hard))
