"""The ``bpfnb`` shell command: ``bpfnb doctor [--fix]`` and friends.

Each subcommand is one function registered with :func:`command`, which names
its arguments; it returns the process's exit status. Errors bpfnb raises on
purpose are printed as one message (with their hint), not as a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BpfnbError
from .kernelspec import CLI_ARGUMENTS as KERNELSPEC_ARGUMENTS

__all__ = ["command", "main"]

_Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, tuple[str, Sequence[tuple[tuple[str, ...], dict[str, Any]]], _Handler]] = {}


def command(name: str, *, help: str, arguments: Sequence[tuple[tuple[str, ...], dict[str, Any]]] = ()) -> Callable[[_Handler], _Handler]:
    """Register the decorated function as subcommand ``name``.

    ``arguments`` holds ``(flags, options)`` pairs for
    ``ArgumentParser.add_argument(*flags, **options)``.
    """

    def register(handler: _Handler) -> _Handler:
        _COMMANDS[name] = (help, arguments, handler)
        return handler

    return register


@command(
    "doctor",
    help="check what this machine allows for BPF and how to fix what is missing",
    arguments=[(("--fix",), {"action": "store_true", "help": "as root: mount tracefs/debugfs/bpffs/securityfs and link generic kernel headers"})],
)
def _doctor(args: argparse.Namespace) -> int:
    from .doctor import fix, report

    if args.fix:
        print(repr(fix()), end="\n\n")
    result = report()
    print(repr(result))
    return 0 if result.ok else 1


@command(
    "kernelspec",
    help="install or remove the 'eBPF (bpfnb)' Jupyter kernel spec (and, for a user, its sudo launcher)",
    arguments=KERNELSPEC_ARGUMENTS,
)
def _kernelspec(args: argparse.Namespace) -> int:
    from .kernelspec import run

    return run(args)


@command(
    "cluster",
    help="start or stop an ipyparallel cluster of root engines for %%bpf --on, or set a host up for one",
    arguments=[
        (("action",), {"choices": ["start", "stop", "setup"]}),
        (("--hosts",), {"help": "start: hosts to start engines on over SSH, joined by commas (none: this machine)"}),
        (("-n", "--engines"), {"type": int, "default": 1, "help": "start: engines per host"}),
        (("--profile",), {"default": None, "help": "the IPython profile of the cluster's connection files"}),
        (("--user",), {"help": "start: log in as USER and start engines through its launcher; "
                                "setup: install that launcher and its sudoers rule (as root, on each host)"}),
        (("--remove",), {"action": "store_true", "help": "setup: remove the user's launcher and rule instead"}),
    ],
)
def _cluster(args: argparse.Namespace) -> int:
    from .cluster_commands import run

    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bpfnb", description="Explore the running Linux kernel with eBPF from notebooks.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, arguments, handler) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bpfnb`` command line; return its exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except BpfnbError as exc:
        print(f"bpfnb {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader left early (`bpfnb doctor | head`); keep Python from
        # complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":  # pragma: no cover - `python -m bpfnb.tools.cli`
    sys.exit(main())
