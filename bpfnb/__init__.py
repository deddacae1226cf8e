"""bpfnb: look inside the running Linux kernel with eBPF from a notebook.

In IPython or Jupyter, ``%load_ext bpfnb`` adds the ``%%bpf`` and ``%%bpftrace``
cell magics and the ``%bpf`` line magic. Without IPython, :class:`Program` does
the same work.

The package is layered; each layer imports only from the layers below it
(``tests/test_layers.py`` checks this)::

    notebook    the %%bpf, %%bpftrace and %bpf magics, their options, completion, the session
    tools, capture
                doctor, the helper catalog, probe listings, kernel spec, the CLI;
                recordings of programs and the captures they write, read anywhere
    remote      one cell on many hosts: ipyparallel engines, gathered maps and streams
    program     Program: one cell's programs, whatever engine built them
    maps, streams, packets
                map views and histories; ring/perf buffer and text streams; packets and test runs
    live        live widgets redrawn from a background thread
    plot, engines
                plots of frames; the engines behind one boundary (BCC, libbpf, bpftrace)
    decode      C types and records to DataFrame columns, histograms
    kernel      bpf() and perf bindings, kernel facts, tracefs, symbols
    display, errors, cache
                HTML building blocks; the error tree; the cache directory

Public names are imported on first use, so that ``import bpfnb`` (and the
``bpfnb doctor`` command) do not pay for pandas' friends, matplotlib, pyarrow
or IPython until something needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import (
    ArgumentError,
    AttachError,
    BpfnbError,
    CaptureError,
    ClusterError,
    CompileError,
    DecodeError,
    Interrupted,
    LayoutError,
    LoadError,
    NoSuchMapError,
    PrivilegeError,
    SetupError,
    UnsupportedMapError,
)

if TYPE_CHECKING:
    from . import plot
    from .capture.notes import remember
    from .capture.recorded import Capture, load
    from .capture.recorder import Recorder, record, save
    from .decode.histogram import percentiles
    from .engines.hooks import Probe
    from .kernel.stats import disable_stats, enable_stats
    from .kernel.tracefs import Tracepoint
    from .live.widget import Live
    from .maps.fd_arrays import CgroupArrayMap, ProgArrayMap
    from .maps.history import MapHistory
    from .maps.queues import QueueMap
    from .maps.reported import ReportedMapView
    from .maps.stacks import StackTraceMap
    from .maps.tables import ArrayMap, HashMap, PerCpuArrayMap, PerCpuHashMap, UnsupportedMap
    from .maps.view import BpfMap
    from .packets.builder import Packet, tcp, udp
    from .packets.testrun import TestRunResult, test_run
    from .program import Program
    from .remote.api import cluster
    from .remote.connection import Cluster
    from .remote.maps import ClusterMap
    from .remote.program import ClusterProgram
    from .remote.streams import ClusterStream
    from .streams.stream import Stream
    from .streams.text import TextStream
    from .tools.helpers import helpers
    from .tools.probe_listing import ProbeList, probes

__version__ = "0.1.0"

# Where each lazily imported public name lives.
_LAZY = {
    "ArrayMap": ".maps.tables",
    "BpfMap": ".maps.view",
    "Capture": ".capture.recorded",
    "CgroupArrayMap": ".maps.fd_arrays",
    "Cluster": ".remote.connection",
    "ClusterMap": ".remote.maps",
    "ClusterProgram": ".remote.program",
    "ClusterStream": ".remote.streams",
    "HashMap": ".maps.tables",
    "Live": ".live.widget",
    "MapHistory": ".maps.history",
    "Packet": ".packets.builder",
    "PerCpuArrayMap": ".maps.tables",
    "PerCpuHashMap": ".maps.tables",
    "Probe": ".engines.hooks",
    "ProbeList": ".tools.probe_listing",
    "ProgArrayMap": ".maps.fd_arrays",
    "Program": ".program",
    "QueueMap": ".maps.queues",
    "ReportedMapView": ".maps.reported",
    "Recorder": ".capture.recorder",
    "StackTraceMap": ".maps.stacks",
    "Stream": ".streams.stream",
    "TestRunResult": ".packets.testrun",
    "TextStream": ".streams.text",
    "Tracepoint": ".kernel.tracefs",
    "UnsupportedMap": ".maps.tables",
    "cluster": ".remote.api",
    "disable_stats": ".kernel.stats",
    "enable_stats": ".kernel.stats",
    "helpers": ".tools.helpers",
    "load": ".capture.recorded",
    "percentiles": ".decode.histogram",
    "probes": ".tools.probe_listing",
    "record": ".capture.recorder",
    "remember": ".capture.notes",
    "save": ".capture.recorder",
    "tcp": ".packets.builder",
    "test_run": ".packets.testrun",
    "udp": ".packets.builder",
}

__all__ = [
    "ArgumentError",
    "ArrayMap",
    "AttachError",
    "BpfMap",
    "BpfnbError",
    "Capture",
    "CaptureError",
    "CgroupArrayMap",
    "Cluster",
    "ClusterError",
    "ClusterMap",
    "ClusterProgram",
    "ClusterStream",
    "CompileError",
    "DecodeError",
    "HashMap",
    "Interrupted",
    "LayoutError",
    "Live",
    "LoadError",
    "MapHistory",
    "NoSuchMapError",
    "Packet",
    "PerCpuArrayMap",
    "PerCpuHashMap",
    "PrivilegeError",
    "Probe",
    "ProbeList",
    "ProgArrayMap",
    "Program",
    "QueueMap",
    "Recorder",
    "ReportedMapView",
    "SetupError",
    "StackTraceMap",
    "Stream",
    "TestRunResult",
    "TextStream",
    "Tracepoint",
    "UnsupportedMap",
    "UnsupportedMapError",
    "cluster",
    "disable_stats",
    "enable_stats",
    "helpers",
    "load",
    "load_ipython_extension",
    "percentiles",
    "plot",
    "probes",
    "record",
    "remember",
    "save",
    "tcp",
    "test_run",
    "udp",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    if name == "plot":
        return importlib.import_module(".plot", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'bpfnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    _present_as_bpfnb(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _present_as_bpfnb(value: Any) -> None:
    """Show public classes and functions as ``bpfnb.X``, where users meet them."""
    if getattr(value, "__module__", "").startswith("bpfnb."):
        value.__module__ = "bpfnb"


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%bpf``, ``%%bpftrace`` and ``%bpf``; loading again changes nothing."""
    from .notebook.magic import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Detach every program the session's cells loaded."""
    from .notebook.magic import unregister

    unregister(ipython)


for _name in __all__:
    if _name.endswith("Error") or _name == "Interrupted":
        _present_as_bpfnb(globals()[_name])
