"""bpfnb: look inside the running Linux kernel with eBPF from a notebook.

In IPython or Jupyter, ``%load_ext bpfnb`` adds the ``%%bpf`` cell magic and
the ``%bpf`` line magic. Without IPython, :class:`Program` does the same work.
"""

from __future__ import annotations

from typing import Any

from . import plot as plot
from ._attach import Probe
from ._events import Stream
from ._exceptions import (
    ArgumentError,
    AttachError,
    BpfnbError,
    CompileError,
    DecodeError,
    LoadError,
    NoSuchMapError,
    PrivilegeError,
    SetupError,
    UnsupportedMapError,
)
from ._helpers import helpers
from ._histogram import percentiles
from ._history import MapHistory
from ._maps import BpfMap
from ._packets import Packet, tcp, udp
from ._program import Program
from ._stats import disable_stats, enable_stats
from ._testrun import TestRunResult, test_run
from ._tracefs import probes

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "AttachError",
    "BpfMap",
    "BpfnbError",
    "CompileError",
    "DecodeError",
    "LoadError",
    "MapHistory",
    "NoSuchMapError",
    "Packet",
    "PrivilegeError",
    "Probe",
    "Program",
    "SetupError",
    "Stream",
    "TestRunResult",
    "UnsupportedMapError",
    "disable_stats",
    "enable_stats",
    "helpers",
    "load_ipython_extension",
    "percentiles",
    "probes",
    "tcp",
    "test_run",
    "udp",
    "unload_ipython_extension",
]

def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%bpf`` and ``%bpf``; loading again changes nothing."""
    from ._magic import BpfnbMagics, complete_bpf_cell

    if _magics(ipython) is not None:
        return
    magics = BpfnbMagics(ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)
    ipython.Completer.custom_matchers.append(complete_bpf_cell)


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
