"""The ``%%bpf`` cell magic and the ``%bpf`` line magic: parse, delegate, return."""

from __future__ import annotations

import sys
from typing import Any, Callable

from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher
from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from traitlets import Bool, observe

from .completion import complete
from ..errors import BpfnbError
from .options import OptionsError, cell_help, command_help, parse_cell_options, parse_command
from .session import Session

__all__ = ["BpfnbMagics", "complete_bpf_cell", "register", "unregister"]

#: Line 1 of a cell is ``%%bpf ...``; the C code starts on line 2.
_FIRST_CODE_LINE = 2


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

    @cell_magic("bpf")
    def bpf_cell(self, line: str, cell: str) -> Any:
        options = _parsed(parse_cell_options, line)
        notice = self.session.header_notice()
        if notice:
            print(notice, file=sys.stderr)
        program = self.session.load(
            options.name,
            cell,
            cflags=options.cflags,
            debug=options.debug,
            attach=options.attach,
            probes=options.probes,
            first_line=_FIRST_CODE_LINE,
        )
        if options.debug and program.log:
            print(program.log)
        self.shell.user_ns[options.name] = program
        return program

    @line_magic("bpf")
    def bpf_line(self, line: str) -> Any:
        args = _parsed(parse_command, line)
        return getattr(self, f"_command_{args.command}")(args)

    def _command_ls(self, args: Any) -> Any:
        return self.session.listing()

    def _command_detach(self, args: Any) -> None:
        if args.all:
            names = self.session.detach_all()
            print(f"detached {', '.join(names)}" if names else "no programs to detach")
        elif self.session.detach(args.name):
            print(f"detached {args.name}")
        else:
            raise UsageError(f"no program named {args.name!r} in this session (see %bpf ls)")

    def _command_doctor(self, args: Any) -> Any:
        from ..tools.doctor import fix, report

        if args.fix:
            for line in fix():
                print(line)
        return report()

    def _command_stats(self, args: Any) -> None:
        from ..kernel.stats import disable_stats, enable_stats

        if args.switch == "on":
            enable_stats()
            print("the kernel now counts each program's runs and run time (while this kernel runs)")
        else:
            disable_stats()
            print("run-time statistics are off for this session")

    def _command_helpers(self, args: Any) -> Any:
        from ..tools.helpers_widget import helpers_widget

        return helpers_widget(pattern=args.pattern, prog_type=args.prog_type)

    def _command_probes(self, args: Any) -> Any:
        from ..tools.probe_listing import probes

        return probes(args.pattern, binary=args.binary)


BpfnbMagics.bpf_cell.__doc__ = cell_help()
BpfnbMagics.bpf_line.__doc__ = command_help()


@context_matcher()
def complete_bpf_cell(context: CompletionContext) -> dict[str, Any]:
    """Complete helpers, BCC macros, map methods and tracepoints inside ``%%bpf`` cells."""
    text = context.full_text
    newline = text.find("\n")
    cursor = sum(len(line) + 1 for line in text.split("\n")[: context.cursor_line]) + context.cursor_position
    if not text.startswith("%%bpf") or newline < 0 or cursor <= newline:
        return {"completions": [], "suppress": False}
    body = text[newline + 1 :]
    found = complete(body, cursor - newline - 1)
    return {
        "completions": [SimpleCompletion(match, type=found.kind) for match in found.matches],
        "matched_fragment": body[found.start : found.end],
        "suppress": bool(found.matches),
    }


def _parsed(parse: Callable[[str], Any], line: str) -> Any:
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


def unregister(ipython: Any) -> None:
    """Detach every program the session's cells loaded."""
    magics = _magics(ipython)
    if magics is not None:
        magics.session.detach_all()


def _magics(ipython: Any) -> BpfnbMagics | None:
    found = ipython.magics_manager.registry.get(BpfnbMagics.__name__)
    return found if isinstance(found, BpfnbMagics) else None
