"""Names for numbers the kernel hands out: kernel symbols, user symbols, syscalls.

Kernel addresses are resolved from ``/proc/kallsyms`` (read once, searched
with numpy, so a million addresses cost one ``searchsorted``). User addresses
need the process's memory map and ELF symbols: BCC's symbolizer does that
(imported only when a user address is resolved, so this module stays usable
without BCC).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

__all__ = ["KernelSymbols", "kernel_symbols", "symbolize", "syscall_name", "syscall_names"]

#: x86-64 and arm64 kernels live in the top half of the address space.
_KERNEL_START = 0xFFFF_8000_0000_0000
_UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")


class KernelSymbols:
    """A sorted table of kernel symbols: address -> name of the enclosing function."""

    def __init__(self, addresses: np.ndarray, names: np.ndarray) -> None:
        order = np.argsort(addresses, kind="stable")
        self.addresses = addresses[order]
        self.names_ = names[order]

    @classmethod
    def from_text(cls, text: str) -> KernelSymbols:
        """Parse the text of ``/proc/kallsyms`` (``address type name [module]`` lines)."""
        addresses: list[int] = []
        names: list[str] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 3 or parts[1] not in "tTwW":
                continue
            address = int(parts[0], 16)
            if address:
                addresses.append(address)
                names.append(parts[2])
        return cls(np.array(addresses, dtype=np.uint64), np.array(names, dtype=object))

    def __len__(self) -> int:
        return len(self.addresses)

    def __repr__(self) -> str:
        return f"<KernelSymbols: {len(self)} functions>"

    def names(self, addresses: np.ndarray) -> np.ndarray:
        """Function names for kernel addresses; unknown ones as ``0x...``."""
        addresses = np.asarray(addresses, dtype=np.uint64)
        where = np.searchsorted(self.addresses, addresses, side="right") - 1
        found = (where >= 0) & (addresses >= _KERNEL_START)
        out = np.empty(len(addresses), dtype=object)
        out[found] = self.names_[where[found]]
        for i in np.flatnonzero(~found):
            out[i] = hex(int(addresses[i]))
        return out


@functools.lru_cache(maxsize=1)
def kernel_symbols() -> KernelSymbols:
    """The running kernel's function symbols (empty when addresses are hidden)."""
    try:
        text = Path("/proc/kallsyms").read_text()
    except OSError:
        text = ""
    return KernelSymbols.from_text(text)


def symbolize(addresses: np.ndarray, *, pid: int | None = None) -> np.ndarray:
    """Names of the functions holding each address, kernel or user, as an object array.

    User addresses need ``pid`` (the process must still be running);
    without it, or when nothing is found, they show as ``0x...``.
    """
    values = np.asarray(addresses, dtype=np.uint64)
    kernel = values >= _KERNEL_START
    out = np.empty(len(values), dtype=object)
    out[kernel] = kernel_symbols().names(values[kernel])
    user = np.flatnonzero(~kernel)
    if len(user):
        distinct, inverse = np.unique(values[user], return_inverse=True)
        names = np.array([_user_symbol(int(a), pid) for a in distinct] + [""], dtype=object)[:-1]
        out[user] = names[inverse]
    return out


def _user_symbol(address: int, pid: int | None) -> str:
    if pid is None or pid < 0:
        return hex(address)
    from bcc import BPF  # deferred: only user stacks need BCC's ELF symbolizer

    name = BPF.sym(address, pid)
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
    return hex(address) if text == "[unknown]" else text


@functools.lru_cache(maxsize=1)
def _syscall_table() -> dict[int, str]:
    try:
        text = _UNISTD.read_text()
    except OSError:
        text = ""
    table = {int(n): name for name, n in re.findall(r"#define __NR_(\w+)\s+(\d+)", text)}
    if table:
        return table
    try:
        from bcc.syscall import syscalls
    except ImportError:
        return {}
    return {n: name.decode() for n, name in syscalls.items()}


def syscall_name(number: int) -> str:
    """The name of a syscall number on this machine's architecture (x86-64 here)."""
    return _syscall_table().get(number, str(number))


def syscall_names() -> dict[int, str]:
    """Every syscall's name by number on this machine's architecture (empty when they cannot be found)."""
    return dict(_syscall_table())
