"""The ``%%bpf`` and ``%%bpftrace`` cell magics and the ``%bpf`` line magic: parse, delegate, return."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, observe

from ..errors import BpfnbError
from .bpftrace_completion import complete_bpftrace
from .completion import Completions, complete
from .options import (
    CellOptions,
    OptionsError,
    bpftrace_help,
    cell_help,
    command_help,
    parse_bpftrace_options,
    parse_cell_options,
    parse_command,
)
from .session import AnyProgram, Session, SessionListing

if TYPE_CHECKING:
    from ..capture.recorded import Capture
    from ..capture.recorder import Recorder
    from ..capture.replaying import ReplayChoice
    from ..kernel.tracefs import Tracepoint
    from ..remote.connection import Cluster
    from ..tools.doctor import DoctorReport
    from ..tools.helpers_widget import HelpersBrowser
    from ..tools.probe_listing import ProbeList

__all__ = ["BpfnbMagics", "complete_bpf_cell", "register", "unregister"]

#: Line 1 of a cell is ``%%bpf ...``; the C code (or bpftrace script) starts on line 2.
_FIRST_CODE_LINE = 2
#: What completes the body of each cell magic.
_COMPLETERS: dict[str, Callable[[str, int], Completions]] = {"%%bpf": complete, "%%bpftrace": complete_bpftrace}
_Parsed = TypeVar("_Parsed")


@magics_class
class BpfnbMagics(Magics):
    """Compile, load and attach eBPF C code from notebook cells."""

    short_errors = Bool(
        True,
        help="Show bpfnb's errors (compiler, verifier, attach) as plain messages without a Python "
        "traceback. Set to False to debug bpfnb itself.",
    ).tag(config=True)

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = Session()

    @observe("short_errors")
    def _on_short_errors_changed(self, change: dict[str, Any]) -> None:
        BpfnbError.short = change["new"]

    # IPython's magic decorators are typed in a way mypy cannot follow.
    @cell_magic("bpf")  # type: ignore[arg-type]
    def bpf_cell(self, line: str, cell: str) -> AnyProgram:
        options = _parsed(parse_cell_options, line)
        program = self._bind(options, cell)
        if options.debug and program.log:
            print(program.log)
        return program

    @cell_magic("bpftrace")  # type: ignore[arg-type]
    def bpftrace_cell(self, line: str, cell: str) -> AnyProgram:
        return self._bind(_parsed(parse_bpftrace_options, line), cell)

    def _bind(self, options: CellOptions, cell: str) -> AnyProgram:
        program = self.session.load(options, cell, first_line=_FIRST_CODE_LINE)
        assert self.shell is not None, "a magic runs in a shell"
        self.shell.user_ns[options.name] = program
        return program

    @line_magic("bpf")  # type: ignore[arg-type]
    def bpf_line(self, line: str) -> object:
        args = _parsed(parse_command, line)
        command: Callable[[argparse.Namespace], object] = getattr(self, f"_command_{args.command}")
        return command(args)

    def _command_ls(self, args: argparse.Namespace) -> SessionListing:
        return self.session.listing()

    def _command_detach(self, args: argparse.Namespace) -> None:
        if args.all:
            names = self.session.detach_all()
            print(f"detached {', '.join(names)}" if names else "no programs to detach")
        elif self.session.detach(args.name):
            print(f"detached {args.name}")
        else:
            raise UsageError(f"no program named {args.name!r} in this session (see %bpf ls)")

    def _command_doctor(self, args: argparse.Namespace) -> DoctorReport:
        from ..tools.doctor import fix, report

        if args.fix:
            for line in fix():
                print(line)
        return report()

    def _command_stats(self, args: argparse.Namespace) -> None:
        from ..kernel.stats import disable_stats, enable_stats

        if args.switch == "on":
            enable_stats()
            print("the kernel now counts each program's runs and run time (while this kernel runs)")
        else:
            disable_stats()
            print("run-time statistics are off for this session")

    def _command_helpers(self, args: argparse.Namespace) -> HelpersBrowser:
        from ..tools.helpers_widget import helpers_widget

        return helpers_widget(pattern=args.pattern, prog_type=args.prog_type)

    def _command_cluster(self, args: argparse.Namespace) -> Cluster | None:
        session = self.session
        if args.action == "connect":
            return session.connect(profile=args.profile, url_file=args.url_file, engines=args.engines)
        if args.action == "start":
            hosts = [h.strip() for h in (args.hosts or "").split(",") if h.strip()]
            return session.start_cluster(hosts, engines=args.engines, profile=args.profile, user=args.user)
        if args.action == "stop":
            names = session.stop_cluster()
            print(f"stopped; detached {', '.join(names)}" if names else "stopped")
            return None
        cluster = session.connected()
        cluster.refresh()
        return cluster

    def _command_probes(self, args: argparse.Namespace) -> ProbeList | Tracepoint:
        from ..tools.probe_listing import probes

        return probes(args.pattern, binary=args.binary)

    def _command_record(self, args: argparse.Namespace) -> Recorder | Capture | str:
        if args.name == "stop":
            return self.session.stop_recording()
        if args.name is None:
            return self.session.recorder or "the session is not recording (start with %bpf record NAME)"
        return self.session.record(args.name, max_bytes=args.max_size, every=args.every)

    def _command_replay(self, args: argparse.Namespace) -> ReplayChoice:
        return self.session.replay(args.path, fallback=args.fallback)

    # IPython's events: a recording notes when cells end, a replay follows them.
    def _before_cell(self, info: Any) -> None:
        self.session.cell_starts(info.raw_cell or "")

    def _after_cell(self, result: Any) -> None:
        self.session.cell_ended(result.info.raw_cell or "")


BpfnbMagics.bpf_cell.__doc__ = cell_help()  # type: ignore[assignment]
BpfnbMagics.bpftrace_cell.__doc__ = bpftrace_help()  # type: ignore[assignment]
BpfnbMagics.bpf_line.__doc__ = command_help()  # type: ignore[assignment]


@context_matcher()  # type: ignore[untyped-decorator]
def complete_bpf_cell(context: CompletionContext) -> dict[str, Any]:
    """Complete inside ``%%bpf`` cells (helpers, BCC macros, map methods, tracepoints) and ``%%bpftrace`` cells."""
    text = context.full_text
    newline = text.find("\n")
    cursor = sum(len(line) + 1 for line in text.split("\n")[: context.cursor_line]) + context.cursor_position
    magic = text.split(maxsplit=1)[0] if text.strip() else ""
    completer = _COMPLETERS.get(magic)
    if completer is None or newline < 0 or cursor <= newline:
        return {"completions": [], "suppress": False}
    body = text[newline + 1 :]
    found = completer(body, cursor - newline - 1)
    return {
        "completions": [SimpleCompletion(match, type=found.kind) for match in found.matches],
        "matched_fragment": body[found.start : found.end],
        "suppress": bool(found.matches),
    }


def _parsed(parse: Callable[[str], _Parsed], line: str) -> _Parsed:
    try:
        return parse(line)
    except OptionsError as exc:
        raise UsageError(str(exc)) from None


def register(ipython: Any) -> None:
    """Add bpfnb's magics and completion to ``ipython``; a second call changes nothing."""
    if _magics(ipython) is not None:
        return
    magics = BpfnbMagics(ipython)
    ipython.register_magics(magics)
    ipython.configurables.append(magics)
    ipython.Completer.custom_matchers.append(complete_bpf_cell)
    ipython.events.register("pre_run_cell", magics._before_cell)
    ipython.events.register("post_run_cell", magics._after_cell)


def unregister(ipython: Any) -> None:
    """Detach every program the session's cells loaded."""
    magics = _magics(ipython)
    if magics is not None:
        for event, callback in (("pre_run_cell", magics._before_cell), ("post_run_cell", magics._after_cell)):
            if callback in ipython.events.callbacks[event]:
                ipython.events.unregister(event, callback)
        if magics.session.recorder is not None:
            magics.session.stop_recording()
        magics.session.detach_all()


def _magics(ipython: Any) -> BpfnbMagics | None:
    found = ipython.magics_manager.registry.get(BpfnbMagics.__name__)
    return found if isinstance(found, BpfnbMagics) else None
