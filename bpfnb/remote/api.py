"""``bpfnb.cluster()``: connect to a cluster, and make ``bpfnb.Program(source, on=...)`` load there."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import program as _program
from ..errors import ArgumentError, ClusterError
from .connection import Cluster, current_cluster, set_current
from .program import ClusterProgram

if TYPE_CHECKING:
    import ipyparallel as ipp

__all__ = ["cluster", "load_on_current"]


def load_on_current(source: str, *, on: str | Sequence[str], strict: bool = False, **options: Any) -> ClusterProgram:
    """Load ``source`` on the hosts ``on`` names of the cluster connected last."""
    found = current_cluster()
    if found is None:
        raise ClusterError("no cluster is connected", hint="connect one first: bpfnb.cluster(profile=...)")
    return ClusterProgram(found, source, on=on, strict=strict, **options)


def cluster(
    profile: str | None = None,
    *,
    url_file: str | os.PathLike[str] | None = None,
    client: ipp.Client | None = None,
    engines: int = 1,
    wait: float = 30.0,
    lost_after: float = 5.0,
    timeout: float = 120.0,
    compression: str | None = None,
) -> Cluster:
    """Connect to an ipyparallel cluster: by ``profile``, by its client ``url_file``, or through a ``client``.

    Parameters
    ----------
    profile, url_file, client
        Where the cluster is; give one. ``profile`` is an IPython profile
        name (``ipcluster start --profile NAME``); ``url_file`` its
        ``ipcontroller-client.json``.
    engines
        Wait (up to ``wait`` seconds) until at least this many engines registered.
    lost_after, timeout, compression
        See :class:`Cluster`.

    Returns
    -------
    Cluster
        Also the cluster ``bpfnb.Program(source, on=...)`` loads on from now on.
    """
    given = [x for x in (profile, url_file, client) if x is not None]
    if len(given) > 1:
        raise ArgumentError("give one of profile=, url_file= or client=")
    import ipyparallel as ipp

    if client is None:
        if url_file is not None and not os.path.isfile(url_file):
            raise ArgumentError(f"{os.fspath(url_file)!r} is not a file", hint="pass the controller's ipcontroller-client.json")
        try:
            # ipyparallel 9 ignores url_file= as a keyword: the file goes first.
            client = ipp.Client(os.fspath(url_file)) if url_file is not None else ipp.Client(profile=profile or "default")
        except (OSError, ValueError) as exc:
            raise ClusterError(
                f"cannot connect to the cluster: {exc}",
                hint="start it first (`ipcluster start`, or `%bpf cluster start`), or check the profile's name",
            ) from None
    try:
        client.wait_for_engines(engines, timeout=wait)
    except TimeoutError:
        registered = len(client.ids)
        client.close()
        raise ClusterError(
            f"only {registered} of {engines} engines registered within {wait:g} s",
            hint="start engines (ipcluster engines, or `bpfnb cluster start`) or ask for fewer",
        ) from None
    found = Cluster(client, lost_after=lost_after, timeout=timeout, compression=compression)
    set_current(found)
    _program.set_remote_loader(load_on_current)
    return found
