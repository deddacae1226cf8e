"""What the ``%%bpf``, ``%%bpftrace`` and ``%bpf`` lines say, parsed without IPython.

``parse_cell_options``, ``parse_bpftrace_options`` and ``parse_command`` raise :class:`OptionsError` (a
``ValueError``) for a malformed line; the magic turns that into IPython's
``UsageError``.
"""

from __future__ import annotations

import argparse
import builtins
import keyword
import re
import shlex
from dataclasses import dataclass
from typing import NoReturn

from ..engines import ENGINES
from ..engines.bcc.compiler import DEBUG_FLAGS, parse_debug_flags
from ..engines.hooks import PROBE_KINDS, Probe
from ..kernel.constants import PROG_TYPES

__all__ = [
    "CellOptions",
    "OptionsError",
    "bpftrace_help",
    "cell_help",
    "command_help",
    "parse_bpftrace_options",
    "parse_cell_options",
    "parse_command",
]


#: Names a cell may not take: they would hide Python's builtins or IPython's own names.
_RESERVED = frozenset(dir(builtins)) | {"get_ipython", "In", "Out", "exit", "quit", "bpfnb"}
# IPython's output and input history: _, __, ___, _7, _i, _ii, _i7, _ih, _oh, _dh.
_IPYTHON_HISTORY = re.compile(r"_+|_i{1,3}|_i?\d+|_(?:ih|oh|dh|sh|exit_code)")


class OptionsError(ValueError):
    """A ``%%bpf``/``%bpf`` line that cannot be parsed; the message says why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise OptionsError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise OptionsError(message or self.format_usage())


@dataclass(frozen=True)
class CellOptions:
    """The parsed first line of a ``%%bpf`` or ``%%bpftrace`` cell."""

    name: str
    cflags: tuple[str, ...] = ()
    debug: int = 0
    attach: bool = True
    probes: tuple[Probe, ...] = ()
    engine: str | None = None
    trust_headers: bool = False
    #: bpftrace: milliseconds between prints of the maps (0: at exit only).
    interval_ms: int = 1000
    #: bpftrace: settings by environment variable, as (name, value) pairs.
    env: tuple[tuple[str, str], ...] = ()
    #: Hosts of the connected cluster to load on (``all`` or ``web1,db1``); None: this machine.
    on: str | None = None
    #: With ``on``: a failure on any host detaches the cell everywhere.
    strict: bool = False


_PROBE_HELP = {
    "kprobe": "KERNEL_FUNCTION[=FN]: a kprobe on a kernel function",
    "kretprobe": "KERNEL_FUNCTION[=FN]: a kretprobe on a kernel function's return",
    "uprobe": "BINARY:SYMBOL[=FN][,pid=PID]: a uprobe, e.g. c:malloc=on_malloc (c is libc)",
    "uretprobe": "BINARY:SYMBOL[=FN][,pid=PID]: a uretprobe on a user function's return",
    "tracepoint": "CATEGORY:EVENT[=FN]: a tracepoint, e.g. sched:sched_switch=on_switch",
    "raw_tracepoint": "EVENT[=FN]: a raw tracepoint, e.g. sched_switch=on_switch",
    "perf_event": "software|hardware:EVENT[=FN][,freq=HZ|period=N][,cpu=N][,pid=N]: "
    "sample on a perf event, e.g. software:cpu-clock=on_sample,freq=99",
    "xdp": "DEVICE[=FN][,mode=skb|drv|hw]: an XDP program on a network device",
    "socket_filter": "DEVICE[=FN]: a socket filter on a raw socket bound to DEVICE",
    "cgroup": "CGROUP[=FN][,type=HOOK]: a cgroup program, e.g. demo=redirect,type=connect4 "
    "(a cgroup v2 path or one relative to its root; libbpf cells take the type from SEC())",
    "sk_msg": "MAP=FN: an sk_msg verdict program on a sockmap or sockhash of the cell",
    "sk_skb": "MAP=FN[,type=verdict|parser]: an sk_skb program on a sockmap or sockhash of the cell",
    "sk_lookup": "NETNS=FN: an sk_lookup program on a network namespace (an `ip netns` name or a path)",
}


def _cell_parser() -> _Parser:
    parser = _Parser(
        prog="%%bpf",
        description="Compile the cell's C code, load it into the kernel, attach it, and bind NAME to the "
        "resulting bpfnb.Program. Cells that include \"vmlinux.h\" or use SEC() are built with libbpf "
        "(CO-RE: kernel types from the running kernel's BTF) and attach by their SEC names; other cells "
        "with BCC, where functions named kprobe__X, tracepoint__CAT__EVENT, raw_tracepoint__X (or written "
        "with TRACEPOINT_PROBE and friends) attach by themselves. The options below attach the others. "
        "FN may be left out when one function is left. Running the cell again replaces the program once "
        "the new one is loaded; if it fails, the old one keeps running.",
        add_help=False,
    )
    parser.add_argument("name", help="the notebook variable to bind the program to")
    parser.add_argument("--cflags", default="", help="extra clang flags, as one quoted string")
    parser.add_argument(
        "--debug",
        default="0",
        help=f"BCC debug flags: a number or names joined by commas ({', '.join(DEBUG_FLAGS)}); "
        "'bpf' prints the verifier's log",
    )
    parser.add_argument("--no-attach", action="store_true", help="load the functions without attaching them")
    parser.add_argument("--engine", choices=ENGINES, default=None, help="build the cell with this engine")
    parser.add_argument(
        "--trust-headers",
        action="store_true",
        help="BCC cells: load even when the installed kernel headers place a kernel struct field the cell reads "
        "elsewhere than the running kernel does (the reads would be wrong)",
    )
    _add_cluster_options(parser)
    for kind in PROBE_KINDS:
        parser.add_argument(
            f"--{kind.replace('_', '-')}",
            dest=kind,
            action="append",
            default=[],
            metavar="SPEC",
            help=_PROBE_HELP[kind] + " (repeatable)",
        )
    return parser


def parse_cell_options(line: str) -> CellOptions:
    """Parse what follows ``%%bpf`` on a cell's first line."""
    args = _cell_parser().parse_args(_attach_cflags(_split(line)))
    _check_name("%%bpf", args.name)
    try:
        probes = tuple(Probe.parse(kind, spec) for kind in PROBE_KINDS for spec in getattr(args, kind))
        debug = parse_debug_flags(args.debug)
    except ValueError as exc:
        raise OptionsError(f"%%bpf: {exc}") from None
    _check_cluster_options("%%bpf", args)
    return CellOptions(
        name=args.name,
        cflags=tuple(_split(args.cflags)),
        debug=debug,
        attach=not args.no_attach,
        probes=probes,
        engine=args.engine,
        trust_headers=args.trust_headers,
        on=args.on,
        strict=args.strict,
    )


def _add_cluster_options(parser: _Parser) -> None:
    parser.add_argument(
        "--on",
        metavar="HOSTS",
        default=None,
        help="load on hosts of the connected cluster (%%bpf cluster connect): 'all' or names joined by commas; "
        "each host loads all or nothing, and hosts where it fails are listed while the others run",
    )
    parser.add_argument("--strict", action="store_true", help="with --on: if any host fails, load on none")


def _check_cluster_options(magic: str, args: argparse.Namespace) -> None:
    if args.strict and args.on is None:
        raise OptionsError(f"{magic}: --strict goes with --on HOSTS")


def _check_name(magic: str, name: str) -> None:
    if not name.isidentifier() or keyword.iskeyword(name):
        raise OptionsError(f"{magic}: {name!r} cannot name a notebook variable")
    if name in _RESERVED or _IPYTHON_HISTORY.fullmatch(name):
        raise OptionsError(f"{magic}: {name!r} would hide Python's or IPython's own {name}: choose another name")


def _bpftrace_parser() -> _Parser:
    parser = _Parser(
        prog="%%bpftrace",
        description="Run the cell's bpftrace script with bpftrace, as a child of this kernel that dies with it, and "
        "bind NAME to the resulting bpfnb.Program: NAME['@map'].df() reads a map as bpftrace last printed it, "
        "NAME.stream() its printf output (time, text, and a column per key=value pair). bpfnb has bpftrace print "
        "every map each --interval, so that the frames stay current while the script runs. Running the cell again "
        "replaces the program once the new one runs; if it fails, the old one keeps running. With --on, bpftrace "
        "runs on each host of the cluster and NAME['@map'].df() gathers its maps with a host column (its printf "
        "output stays on the hosts).",
        add_help=False,
    )
    parser.add_argument("name", help="the notebook variable to bind the program to")
    parser.add_argument(
        "--interval",
        type=int,
        default=1000,
        metavar="MS",
        help="milliseconds between prints of the maps (default 1000; 0: the maps show when the script ends). "
        "bpftrace takes seconds to print a map of a million keys: give such maps a longer interval, or 0",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a bpftrace setting, e.g. BPFTRACE_MAP_KEYS_MAX=100000 (maps keep 4096 keys by default; repeatable)",
    )
    _add_cluster_options(parser)
    return parser


def parse_bpftrace_options(line: str) -> CellOptions:
    """Parse what follows ``%%bpftrace`` on a cell's first line."""
    args = _bpftrace_parser().parse_args(_split(line))
    _check_name("%%bpftrace", args.name)
    if args.interval < 0:
        raise OptionsError(f"%%bpftrace: --interval {args.interval}: give milliseconds, or 0 for prints at exit only")
    settings = [setting.partition("=") for setting in args.env]
    if not all(name and sep for name, sep, _ in settings):
        raise OptionsError(f"%%bpftrace: --env takes NAME=VALUE, not {' '.join(args.env)!r}")
    _check_cluster_options("%%bpftrace", args)
    return CellOptions(
        name=args.name,
        engine="bpftrace",
        interval_ms=args.interval,
        env=tuple((name, value) for name, _, value in settings),
        on=args.on,
        strict=args.strict,
    )


def bpftrace_help() -> str:
    return _bpftrace_parser().format_help()


def _attach_cflags(words: list[str]) -> list[str]:
    """Join ``--cflags VALUE`` into one word: argparse would read a VALUE like ``-DX=1`` as an option."""
    joined: list[str] = []
    remaining = iter(words)
    for word in remaining:
        joined.append(f"--cflags={next(remaining, '')}" if word == "--cflags" else word)
    return joined


def cell_help() -> str:
    return _cell_parser().format_help()


def _command_parser() -> _Parser:
    parser = _Parser(prog="%bpf", description="Manage the session's BPF programs and look around the kernel.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands.add_parser("ls", help="list the session's programs, streams and live plots")
    detach = commands.add_parser("detach", help="detach a program (or all of them)")
    detach.add_argument("name", nargs="?", help="the program's name")
    detach.add_argument("--all", action="store_true", help="detach every program of the session")
    doctor = commands.add_parser("doctor", help="check what this machine allows and how to fix what is missing")
    doctor.add_argument("--fix", action="store_true", help="mount tracefs/debugfs/bpffs and link headers")
    stats = commands.add_parser("stats", help="turn the kernel's per-program run-time statistics on or off")
    stats.add_argument("switch", choices=["on", "off"])
    helpers = commands.add_parser("helpers", help="the BPF helper functions and where the kernel allows them")
    helpers.add_argument("pattern", nargs="?", default=None)
    helpers.add_argument("--type", dest="prog_type", default=None, help="only helpers this program type may call")
    probes = commands.add_parser("probes", help="attachable tracepoints; with one name, its fields")
    probes.add_argument("pattern", nargs="?", default=None)
    probes.add_argument("--binary", default=None, help="list a binary's symbols for uprobes instead")
    cluster = commands.add_parser("cluster", help="connect to, start, stop or look at an ipyparallel cluster")
    cluster.add_argument("action", choices=["connect", "start", "stop", "status"])
    cluster.add_argument("--profile", default=None, help="the cluster's IPython profile")
    cluster.add_argument("--url-file", default=None, help="connect: the controller's ipcontroller-client.json")
    cluster.add_argument("--hosts", default=None, help="start: hosts to start an engine on over SSH, joined by commas")
    cluster.add_argument("-n", "--engines", type=int, default=1, help="engines per host (start), or to wait for (connect)")
    cluster.add_argument(
        "--user", default=None, help="start: log in as USER and start engines through its bpfnb engine launcher (sudo)"
    )
    record = commands.add_parser(
        "record",
        help="record what this session's programs produce (maps, streams, histories) to a new capture directory; "
        "`%%bpf record stop` ends it; without NAME, show the recording",
    )
    record.add_argument("name", nargs="?", default=None, help="the capture's directory, or 'stop'")
    record.add_argument(
        "--max-size", default=None, help="keep the capture within this size on disk (e.g. 500M, 2G), dropping its oldest data"
    )
    record.add_argument("--every", type=float, default=1.0, help="seconds between map snapshots (default 1)")
    replay = commands.add_parser("replay", help="answer the %%%%bpf cells below from a capture instead of the kernel")
    replay.add_argument("path", help="the capture: a directory or a .zip")
    replay.add_argument(
        "--fallback", action="store_true", help="only if this kernel cannot load BPF programs (otherwise run live)"
    )
    return parser


def parse_command(line: str) -> argparse.Namespace:
    """Parse a ``%bpf`` line magic's subcommand and its arguments."""
    args = _command_parser().parse_args(_split(line))
    if args.command == "detach" and bool(args.name) == bool(args.all):
        raise OptionsError("%bpf detach: give a program's NAME or --all")
    if args.command == "cluster" and args.profile and args.url_file:
        raise OptionsError("%bpf cluster: give --profile or --url-file, not both")
    if args.command == "record" and args.max_size is not None:
        args.max_size = parse_size(args.max_size)
    if args.command == "helpers" and args.prog_type is not None:
        args.prog_type = args.prog_type.lower().removeprefix("bpf_prog_type_")
        if args.prog_type not in PROG_TYPES:
            raise OptionsError(f"%bpf helpers: --type {args.prog_type!r} is not a program type ({', '.join(PROG_TYPES)})")
    return args


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def parse_size(text: str) -> int:
    """``500M`` -> bytes; K, M and G are powers of 1024."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)i?B?", text.strip(), re.IGNORECASE)
    if not match:
        raise OptionsError(f"%bpf record: --max-size {text!r} is not a size such as 500M or 2G")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def command_help() -> str:
    return _command_parser().format_help()


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise OptionsError(f"cannot split {line!r}: {exc}") from None
