"""``vmlinux.h`` for the running kernel, generated once per kernel build.

CO-RE programs include ``vmlinux.h``: every type of the running kernel, as C,
dumped from its BTF by ``bpftool btf dump file /sys/kernel/btf/vmlinux format c``.
The header is cached under ``<cache>/vmlinux/<key>/vmlinux.h`` where the key is
a hash of the BTF bytes themselves, so a different kernel (even one with the
same release string) never reuses another kernel's header.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ...cache import atomic_path, cache_root
from ...errors import SetupError
from ...kernel.environment import KERNEL_BTF, kernel_btf_key

__all__ = ["bpftool_path", "vmlinux_header"]

# Debian installs bpftool in /usr/sbin, which is not on a normal user's PATH.
_BPFTOOL_FALLBACKS = ("/usr/sbin/bpftool", "/usr/local/sbin/bpftool")
_HEADER_GUARD = b"#ifndef __VMLINUX_H__"


def bpftool_path() -> str:
    """The bpftool executable.

    Returns
    -------
    str
        Its path.

    Raises
    ------
    SetupError
        bpftool is not installed.
    """
    found = shutil.which("bpftool")
    if found:
        return found
    for candidate in _BPFTOOL_FALLBACKS:
        if Path(candidate).is_file():
            return candidate
    raise SetupError(
        "bpftool is not installed: it is needed to write vmlinux.h from the kernel's BTF",
        hint="install it: apt-get install -y --no-install-recommends bpftool",
    )


def vmlinux_header(btf_path: Path = KERNEL_BTF) -> Path:
    """The path of ``vmlinux.h`` for the kernel whose BTF is ``btf_path``.

    Parameters
    ----------
    btf_path
        The kernel BTF to dump; the running kernel's by default.

    Returns
    -------
    Path
        ``<cache>/vmlinux/<key>/vmlinux.h``; pass its directory to clang with ``-I``.

    Raises
    ------
    SetupError
        The kernel has no BTF, bpftool is missing, or bpftool failed.
    """
    header = cache_root() / "vmlinux" / kernel_btf_key(btf_path) / "vmlinux.h"
    if header.is_file():
        return header
    bpftool = bpftool_path()
    with atomic_path(header) as tmp:
        with tmp.open("wb") as out:
            # bpftool streams the header; writing straight into the temporary
            # file avoids holding 3 MB of C in memory.
            done = subprocess.run(
                [bpftool, "btf", "dump", "file", str(btf_path), "format", "c"],
                stdout=out,
                stderr=subprocess.PIPE,
                check=False,
            )
        with tmp.open("rb") as written:
            head = written.read(4096)
        if done.returncode != 0 or _HEADER_GUARD not in head:
            raise SetupError(
                f"bpftool could not write vmlinux.h from {btf_path} (exit status {done.returncode})",
                hint="check that bpftool works: bpftool btf dump file /sys/kernel/btf/vmlinux format c",
                details=done.stderr.decode(errors="replace").strip(),
            )
    return header
