"""What a cluster map or stream needs of its program: the :class:`HostedProgram` protocol.

:class:`~bpfnb.remote.program.ClusterProgram` satisfies it; maps and streams
depend on this protocol, not on that class, so the program can make them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from ..engines.base import Resource
    from .connection import Cluster

__all__ = ["HostedProgram", "HostView"]


class HostView(Protocol):
    """One host's state as a program's maps and streams see it."""

    @property
    def engine(self) -> int: ...

    @property
    def state(self) -> str: ...


class HostedProgram(Protocol):
    """A program loaded on hosts of a cluster, as its maps and streams use it."""

    name: str
    #: The engines' key for the program.
    key: str

    @property
    def cluster(self) -> Cluster: ...

    @property
    def closed(self) -> bool: ...

    @property
    def host_names(self) -> list[str]:
        """Every host the program was asked to load on."""

    @property
    def running_hosts(self) -> list[str]: ...

    def state_of(self, host: str) -> HostView: ...

    def require_alive(self, doing: str) -> None:
        """Raise a BpfnbError saying the program is detached, if it is."""

    def call_hosts(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        """``fn(key, *args, **kwargs)`` on every running host: the answers of those that answered."""

    def mark_lost(self, host: str, reason: str) -> None: ...

    def mark_answering(self, host: str) -> None: ...

    def own(self, resource: Resource) -> None: ...

    def stats(self) -> pd.DataFrame: ...
