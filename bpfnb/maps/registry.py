"""Which view class reads which map type: ``prog[name]`` is ``map_view(prog, spec)``.

Maps an engine reports as frames (bpftrace's) are :class:`ReportedMapView`s.
"""

from __future__ import annotations

from typing import Union

from ..engines.base import MapSpec, Owner, ReportedMap
from ..kernel.constants import MAP_TYPE_IDS
from .fd_arrays import CgroupArrayMap, ProgArrayMap
from .local_storage import CgroupStorageMap, SocketStorageMap, TaskStorageMap
from .queues import QueueMap
from .reported import ReportedMapView
from .sockmaps import SockMap
from .stacks import StackTraceMap
from .tables import ArrayMap, HashMap, PerCpuArrayMap, PerCpuHashMap, UnsupportedMap
from .view import BpfMap

__all__ = ["VIEWS", "MapView", "map_view"]

#: What ``prog[name]`` is.
MapView = Union[BpfMap, ReportedMapView]

#: The view class for each BPF_MAP_TYPE_* number; any other type is an UnsupportedMap.
VIEWS: dict[int, type[BpfMap]] = {
    MAP_TYPE_IDS[name]: view
    for name, view in {
        "hash": HashMap,
        "lru_hash": HashMap,
        "lpm_trie": HashMap,
        "array": ArrayMap,
        "percpu_hash": PerCpuHashMap,
        "lru_percpu_hash": PerCpuHashMap,
        "percpu_array": PerCpuArrayMap,
        "stack_trace": StackTraceMap,
        "queue": QueueMap,
        "stack": QueueMap,
        "prog_array": ProgArrayMap,
        "cgroup_array": CgroupArrayMap,
        "sockmap": SockMap,
        "sockhash": SockMap,
        "cgroup_storage": HashMap,
        "percpu_cgroup_storage": PerCpuHashMap,
        "task_storage": TaskStorageMap,
        "cgrp_storage": CgroupStorageMap,
        "sk_storage": SocketStorageMap,
    }.items()
}


def map_view(program: Owner, spec: MapSpec | ReportedMap) -> MapView:
    """The view on the map ``spec`` of ``program``, chosen by the map's type."""
    if not isinstance(spec, MapSpec):
        return ReportedMapView(program, spec)
    return VIEWS.get(spec.type_id, UnsupportedMap)(program, spec)
