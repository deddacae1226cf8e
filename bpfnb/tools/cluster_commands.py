"""``bpfnb cluster start|stop|setup``: clusters of root engines, as a shell command."""

from __future__ import annotations

import argparse

from ..errors import ArgumentError
from ..remote import launch
from .kernelspec import engine_command, install_engine_launcher, uninstall_engine_launcher

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Carry out a parsed ``bpfnb cluster`` command line; return the exit status."""
    if args.action == "setup":
        if not args.user:
            raise ArgumentError("setup needs --user USER: the user who will start engines on this host")
        if args.remove:
            uninstall_engine_launcher(args.user)
            print(f"removed {args.user}'s engine launcher")
        else:
            launcher, rule = install_engine_launcher(args.user)
            print(f"{args.user} can start root engines here: {launcher} (allowed by {rule})")
        return 0
    if args.action == "stop":
        launch.stop(args.profile)
        print(f"stopped the cluster of profile {args.profile or 'default'}")
        return 0
    hosts = [h.strip() for h in (args.hosts or "").split(",") if h.strip()]
    if args.user:
        hosts = [h if "@" in h else f"{args.user}@{h}" for h in hosts]
    launch.start(hosts, engines=args.engines, profile=args.profile, engine_cmd=engine_command(args.user), daemon=True)
    print(
        f"started a controller and {args.engines * max(len(hosts), 1)} engines (profile {args.profile or 'default'}); "
        f"connect with `%bpf cluster connect --profile {args.profile or 'default'}`, stop with `bpfnb cluster stop`"
    )
    return 0
