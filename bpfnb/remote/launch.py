"""Starting and stopping a cluster with ipyparallel's own launchers: engines here, or on hosts over SSH.

``start(hosts=["web1", "db1"])`` starts a controller on this machine,
listening on every interface, and one engine per host through ipyparallel's
``SSHEngineSetLauncher`` (``start(engines=2)``: local engines instead). The
engine command is the caller's: for a login user other than root it is the
root-owned launcher that ``bpfnb cluster setup --user USER`` installs on each
host (``sudo -n /usr/local/libexec/bpfnb/engine-USER``), the same narrow way
the notebook kernel gets root.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from ..errors import ArgumentError, ClusterError

__all__ = ["start", "stop", "stop_launched"]


def start(
    hosts: Sequence[str] = (),
    *,
    engines: int = 1,
    profile: str | None = None,
    engine_cmd: Sequence[str] | None = None,
    location: str | None = None,
    daemon: bool = False,
) -> Any:
    """Start a controller and engines; return the started ``ipyparallel.Cluster``.

    Parameters
    ----------
    hosts
        Hosts to start one engine each on over SSH (``user@host`` works);
        none: ``engines`` engines on this machine.
    profile
        The IPython profile the cluster's connection files go to.
    engine_cmd
        The command that starts an engine (default: ipyparallel's, with this
        Python here or ``python3`` on the hosts).
    location
        The name or address engines and clients reach the controller at
        (default: this machine's fully qualified name).
    daemon
        Leave the cluster running when this process exits (``bpfnb cluster
        start``); otherwise it stops with this process.
    """
    import ipyparallel as ipp
    from traitlets.config import Config

    if engines < 1:
        raise ArgumentError(f"engines must be at least 1, not {engines}")
    config = Config()
    options: dict[str, Any] = {"n": engines, "shutdown_atexit": not daemon}
    if hosts:
        launcher = "SSHEngineSetLauncher"
        config[launcher].engines = {host: engines for host in hosts}
        options.update(
            engines="ssh", n=engines * len(hosts), controller_ip="*", controller_location=location or socket.getfqdn()
        )
    else:
        launcher = "LocalEngineSetLauncher"
        options.update(engines="local")
    if engine_cmd:
        config[launcher].engine_cmd = list(engine_cmd)
    if profile:
        options["profile"] = profile
    started = ipp.Cluster(config=config, **options)
    try:
        started.start_cluster_sync()
    except Exception as exc:  # the launchers' own errors: a host that SSH cannot reach, a missing command
        stop_launched(started)
        raise ClusterError(f"the cluster did not start: {exc}", hint="check that SSH reaches the hosts") from exc
    return started


def stop(profile: str | None = None, cluster_id: str = "") -> None:
    """Stop a cluster started with ``daemon=True`` (by ``bpfnb cluster start``)."""
    import ipyparallel as ipp

    try:
        found = ipp.Cluster.from_file(profile=profile or "default", cluster_id=cluster_id)
    except FileNotFoundError:
        raise ClusterError(f"no cluster {cluster_id or '(default)'} was started in profile {profile or 'default'}") from None
    stop_launched(found)


def stop_launched(started: Any) -> None:
    """Stop a started cluster's engines and controller, and forget it."""
    started.stop_cluster_sync()
