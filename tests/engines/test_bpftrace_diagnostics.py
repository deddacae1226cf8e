"""bpftrace 0.17's stderr placed in the cell and turned into bpfnb's errors (pure; texts as bpftrace printed them here)."""

from __future__ import annotations

from bpfnb.engines.bpftrace.diagnostics import failure, format_diagnostics, parse_stderr
from bpfnb.engines.bpftrace.prepared import prepare
from bpfnb.errors import AttachError, CompileError, PrivilegeError

MEMLOCK = (
    "ERROR: Unknown error -1: couldn't set RLIMIT_MEMLOCK for bpftrace. If your program is not loading, "
    'you can try "ulimit -l 8192" to fix the problem\n'
)
SYNTAX = "BEGIN { }\ntracepoint:syscalls:sys_enter_getppid { @x = count( }"


def test_a_syntax_error_is_placed_at_its_cell_line_and_column() -> None:
    prepared = prepare(SYNTAX, first_line=2)
    stderr = MEMLOCK + (
        "stdin:2:53-54: ERROR: syntax error, unexpected }\n"
        "tracepoint:syscalls:sys_enter_getppid { @x = count( }\n"
        "                                                    ~\n"
    )
    (d,) = parse_stderr(stderr, prepared)
    assert (d.level, d.message, d.line, d.column, d.end_column) == ("error", "syntax error, unexpected }", 3, 53, 54)
    text = format_diagnostics([d], prepared).splitlines()
    assert text[0] == "line 3, column 53: error: syntax error, unexpected }"
    assert text[2].index("^") == text[1].index("}")
    error = failure(stderr, prepared, 1)
    assert isinstance(error, CompileError) and error.line == 3
    assert error.message == "the bpftrace script does not compile: syntax error, unexpected } (line 3, column 53)"
    assert "RLIMIT_MEMLOCK" not in str(error)


def test_several_messages_keep_their_order_and_levels() -> None:
    prepared = prepare("k { @l = lhist(1, -10, 10, 5); }")
    stderr = (
        "stdin:1:10-29: ERROR: lhist() min must be non-negative (provided min -10)\n"
        "k { @l = lhist(1, -10, 10, 5); }\n"
        "         ~~~~~~~~~~~~~~~~~~~~\n"
        "stdin:1:10-29: WARNING: something else\n"
    )
    errors = parse_stderr(stderr, prepared)
    assert [(d.level, d.line, d.column) for d in errors] == [("error", 1, 10), ("warning", 1, 10)]
    assert errors[0].where == "line 1, columns 10-28"


def test_an_unknown_probe_on_a_later_line_is_placed_by_its_line_range() -> None:
    # bpftrace 0.17 places a probe off the first line by a range of lines, the probe on the last.
    prepared = prepare("BEGIN {}\n\n  tracepoint:nope:nope { @x = count(); }", first_line=2)
    error = failure(MEMLOCK + "stdin:1-3: ERROR: tracepoint not found: nope:nope\n", prepared, 1)
    assert isinstance(error, AttachError)
    assert error.message == "bpftrace cannot attach: tracepoint not found: nope:nope (line 4, columns 3-22)"
    assert error.line == 4


def test_an_error_placed_on_a_probe_is_an_attach_error() -> None:
    prepared = prepare("software:nope:1 { @x = count(); }")
    stderr = "stdin:1:1-16: ERROR: nope is not a software probe\nsoftware:nope:1 { @x = count(); }\n~~~~~~~~~~~~~~~\n"
    assert isinstance(failure(stderr, prepared, 1), AttachError)


def test_an_attach_failure_points_at_its_probe() -> None:
    prepared = prepare("BEGIN { }\nkprobe:do_nanosleep { @x = count(); }", first_line=2)
    stderr = MEMLOCK + (
        'stdin:2:1-20: WARNING: do_nanosleep is not traceable (either non-existing, inlined, or marked as "notrace");'
        " attaching to it will likely fail\n"
        "kprobe:do_nanosleep { @x = count(); }\n"
        "~~~~~~~~~~~~~~~~~~~\n"
        "create_probe_event: open(/sys/kernel/debug/tracing/kprobe_events): No such file or directory\n"
        "ERROR: Error attaching probe: 'kprobe:do_nanosleep'\n"
    )
    warning, note, error = parse_stderr(stderr, prepared)
    assert warning.level == "warning" and warning.line == 3
    assert note.level == "note" and note.message.startswith("create_probe_event")
    assert (error.line, error.column, error.end_column) == (3, 1, 20)
    raised = failure(stderr, prepared, 1)
    assert isinstance(raised, AttachError) and raised.line == 3 and "kprobe_events" in raised.details


def test_an_unknown_probe_type_is_named() -> None:
    # bpftrace 0.17 aborts without saying which probe.
    prepared = prepare("BEGIN { }\nrawtracepoint:sched_switch { @x = count(); }", first_line=2)
    error = failure(MEMLOCK + "FATAL: Invalid probe type made it to attachpoint parser\n", prepared, None)
    assert isinstance(error, AttachError) and error.line == 3
    assert "unknown probe type 'rawtracepoint'" in error.message


def test_glued_noise_is_dropped_and_the_last_note_speaks() -> None:
    prepared = prepare("uprobe:/bin/sh:nope { }")
    stderr = (
        "Error while reading traceable functions from /sys/kernel/debug/tracing/available_filter_functions: "
        "Operation not permitted" + MEMLOCK + "No probes to attach\n"
    )
    (d,) = parse_stderr(stderr, prepared)
    assert (d.level, d.message) == ("note", "No probes to attach")
    error = failure(stderr, prepared, 1)
    assert isinstance(error, AttachError) and "matched" in error.hint


def test_a_position_in_the_added_probe_has_no_cell_line() -> None:
    prepared = prepare("k { @c = count(); }")
    (d,) = parse_stderr("stdin:3:5-9: ERROR: boom\n", prepared)
    assert d.line is None and d.script_line == 3


def test_bpftrace_without_root_is_a_privilege_error() -> None:
    stderr = "ERROR: bpftrace currently only supports running as the root user.\n"
    assert isinstance(failure(stderr, prepare("BEGIN { }"), 1), PrivilegeError)
