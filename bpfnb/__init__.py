"""bpfnb: look inside the running Linux kernel with eBPF from a notebook.

In IPython or Jupyter, ``%load_ext bpfnb`` adds the ``%%bpf`` cell magic and
the ``%bpf`` line magic. Without IPython, :class:`Program` does the same work.
"""

from __future__ import annotations

from typing import Any

from ._attach import Probe
from ._exceptions import (
    AttachError,
    BpfnbError,
    CompileError,
    DecodeError,
    LoadError,
    PrivilegeError,
    SetupError,
    UnsupportedMapError,
)
from ._program import Program
from ._stats import disable_stats, enable_stats

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BpfnbError",
    "CompileError",
    "DecodeError",
    "LoadError",
    "PrivilegeError",
    "Probe",
    "Program",
    "SetupError",
    "UnsupportedMapError",
    "disable_stats",
    "enable_stats",
    "load_ipython_extension",
    "unload_ipython_extension",
]

def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%bpf`` and ``%bpf``; loading again changes nothing."""
    from ._magic import BpfnbMagics

    if _magics(ipython) is not None:
        return
    magics = BpfnbMagics(ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)


def unload_ipython_extension(ipython: Any) -> None:
    """Detach every program the session's cells loaded."""
    magics = _magics(ipython)
    if magics is not None:
        magics.session.detach_all()


def _magics(ipython: Any) -> Any:
    from ._magic import BpfnbMagics

    return ipython.magics_manager.registry.get(BpfnbMagics.__name__)


for _name in __all__:
    _public = globals()[_name]
    if getattr(_public, "__module__", "").startswith("bpfnb._"):
        _public.__module__ = "bpfnb"
