"""The %%bpftrace cell magic in a real IPython shell, running the real bpftrace."""

from __future__ import annotations

import os
import shutil

import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell

import bpfnb

from .test_bpftrace_lifecycle import bpftraces, gone

pytestmark = pytest.mark.skipif(shutil.which("bpftrace") is None, reason="bpftrace is not installed (make test installs it)")

CELL = """%%bpftrace {name} --interval 200
tracepoint:sched:sched_process_exec {{ @execs[comm] = count(); printf("exec pid=%d\\n", pid); }}
"""


@pytest.fixture
def shell(no_leaks):  # type: ignore[no-untyped-def]
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("unload_ext", "bpfnb")
    InteractiveShell.clear_instance()
    assert not bpftraces(os.getpid())


def bpftrace_pid() -> int:
    (pid,) = bpftraces(os.getpid())
    return pid


def test_a_cell_binds_a_program_that_ls_lists_and_detach_stops(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    result = shell.run_cell(CELL.format(name="execs"))
    program = shell.user_ns["execs"]
    assert result.success and result.result is program and isinstance(program, bpfnb.Program)
    assert program.engine == "bpftrace"
    (row,) = shell.run_line_magic("bpf", "ls").rows
    assert (row.name, row.kind, row.state) == ("execs", "program (bpftrace)", "attached")
    assert row.details == "bpftrace tracepoint:sched:sched_process_exec; maps @execs"
    pid = bpftrace_pid()
    shell.run_line_magic("bpf", "detach execs")
    assert program.closed and gone(pid) and "detached execs" in capsys.readouterr().out


def test_rerunning_replaces_and_a_failed_rerun_keeps_the_program_that_runs(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell(CELL.format(name="execs"))
    first, first_pid = shell.user_ns["execs"], bpftrace_pid()
    shell.run_cell(CELL.format(name="execs"))
    second = shell.user_ns["execs"]
    assert first.closed and gone(first_pid) and not second.closed
    broken = CELL.format(name="execs").replace("count();", "count( ;")
    result = shell.run_cell(broken)
    error = result.error_in_exec
    assert isinstance(error, bpfnb.CompileError) and error.line == 2  # the %%bpftrace line is line 1
    assert "previous program 'execs' is still attached and running" in error.hint
    assert shell.user_ns["execs"] is second and not second.closed and len(bpftraces(os.getpid())) == 1
    shown = capsys.readouterr().out
    assert "line 2, column" in shown and "Traceback" not in shown
    shell.run_line_magic("unload_ext", "bpfnb")
    assert second.closed and not bpftraces(os.getpid())


def test_bad_options_are_usage_errors(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert not shell.run_cell("%%bpftrace x --interval -1\nBEGIN { }\n").success
    assert "give milliseconds" in capsys.readouterr().err
    assert "--interval MS" in (bpfnb.notebook.magic.BpfnbMagics.bpftrace_cell.__doc__ or "")


@pytest.mark.parametrize(
    ("code", "expected", "kind"),
    [
        ("%%bpftrace p\ntracepoint:sched:sched_sw", "sched_switch", "tracepoint"),
        ("%%bpftrace p\ntrace", "tracepoint:", "probe type"),
        ("%%bpftrace p\ntracepoint:sched:sched_process_exec { @[args->filen", "filename", "tracepoint field"),
        ("%%bpftrace p\nBEGIN { @x = hi", "hist", "name"),
    ],
)
def test_completion_inside_bpftrace_cells(shell: InteractiveShell, code: str, expected: str, kind: str) -> None:
    with provisionalcompleter():
        completions = list(shell.Completer.completions(code, len(code)))
    assert expected in [c.text for c in completions]
    assert {c.type for c in completions if c.text == expected} == {kind}
