"""The %%bpf and %bpf magics in a real IPython shell, loading real programs."""

from __future__ import annotations

import ctypes
import time

import pytest
from bs4 import BeautifulSoup
from IPython.core.interactiveshell import InteractiveShell

import bpfnb

from .conftest import kernel_prog_ids, run_workload

COUNTER_CELL = """%%bpf {name} {options}
BPF_HASH(counts, u32, u64);
TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    counts.increment(pid);
    return 0;
}}
"""


@pytest.fixture
def shell(no_leaks):
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "bpfnb")
    yield ip
    ip.run_line_magic("unload_ext", "bpfnb")
    InteractiveShell.clear_instance()


def run(shell: InteractiveShell, cell: str):
    result = shell.run_cell(cell)
    return result


def prog_id(program: bpfnb.Program) -> int:
    return int(program.stats().prog_id[0])


def test_cell_binds_a_program_that_counts(shell, workload):
    result = run(shell, COUNTER_CELL.format(name="syscalls", options=""))
    assert result.success
    program = shell.user_ns["syscalls"]
    assert isinstance(program, bpfnb.Program) and result.result is program
    pid = run_workload(workload, 100)
    counts = program.bpf[b"counts"]
    assert counts[counts.Key(pid)].value == 100


def test_loading_twice_is_harmless(shell):
    shell.run_line_magic("load_ext", "bpfnb")
    shell.run_line_magic("reload_ext", "bpfnb")
    assert run(shell, COUNTER_CELL.format(name="p", options="")).success


def test_rerunning_a_cell_replaces_its_program(shell):
    run(shell, COUNTER_CELL.format(name="syscalls", options=""))
    first = shell.user_ns["syscalls"]
    first_id = prog_id(first)
    run(shell, COUNTER_CELL.format(name="syscalls", options=""))
    second = shell.user_ns["syscalls"]
    assert first.closed and not second.closed
    assert first_id not in kernel_prog_ids()
    assert prog_id(second) in kernel_prog_ids()


def test_a_failed_rerun_keeps_the_program_that_works(shell, workload):
    run(shell, COUNTER_CELL.format(name="syscalls", options=""))
    working = shell.user_ns["syscalls"]
    broken = COUNTER_CELL.format(name="syscalls", options="").replace("counts.increment(pid);", "counts.increment(pid)")
    result = run(shell, broken)
    assert isinstance(result.error_in_exec, bpfnb.CompileError)
    assert result.error_in_exec.line == 5
    assert "previous program 'syscalls' is still attached and running" in result.error_in_exec.hint
    assert shell.user_ns["syscalls"] is working and not working.closed
    pid = run_workload(workload, 10)
    assert working["counts"][pid] == 10
    assert [row.name for row in shell.run_line_magic("bpf", "ls").rows] == ["syscalls"]


def test_ls_and_detach(shell, capsys):
    run(shell, COUNTER_CELL.format(name="one", options=""))
    run(shell, COUNTER_CELL.format(name="two", options="--no-attach"))
    listing = shell.run_line_magic("bpf", "ls")
    assert [(row.name, row.state) for row in listing.rows] == [("one", "attached"), ("two", "loaded, not attached")]
    assert "tracepoint syscalls:sys_enter_getppid" in repr(listing)
    page = BeautifulSoup(listing._repr_html_(), "html.parser")
    assert [tr.td.get_text() for tr in page.select("table.bpfnb-t tbody tr")] == ["one", "two"]
    shell.run_line_magic("bpf", "detach one")
    assert shell.user_ns["one"].closed and not shell.user_ns["two"].closed
    shell.run_line_magic("bpf", "detach --all")
    assert shell.user_ns["two"].closed
    assert len(shell.run_line_magic("bpf", "ls")) == 0
    assert "detached two" in capsys.readouterr().out


def test_unloading_the_extension_detaches_everything(shell):
    run(shell, COUNTER_CELL.format(name="syscalls", options=""))
    program = shell.user_ns["syscalls"]
    shell.run_line_magic("unload_ext", "bpfnb")
    assert program.closed


def test_compile_error_shows_cell_line_numbers_without_traceback(shell, capsys):
    cell = "%%bpf broken\nBPF_HASH(counts, u32, u64);\n\nTRACEPOINT_PROBE(sched, sched_switch) {\n    int x = args->prev_pidd;\n    return 0;\n}\n"
    result = run(shell, cell)
    assert isinstance(result.error_in_exec, bpfnb.CompileError)
    shown = capsys.readouterr().out
    # JupyterLab numbers the %%bpf line 1, so the bad line is 5.
    assert "line 5:19: error: no member named 'prev_pidd'" in shown
    assert "Traceback" not in shown and "bpfnb/_" not in shown
    assert "broken" not in shell.user_ns


def test_verifier_error_in_a_cell(shell, capsys):
    cell = (
        "%%bpf bad\nBPF_HASH(counts, u32, u64);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    u32 pid = 1;\n    u64 *v = counts.lookup(&pid);\n    return *v;\n}\n"
    )
    result = run(shell, cell)
    assert isinstance(result.error_in_exec, bpfnb.LoadError)
    shown = capsys.readouterr().out
    assert "the verifier rejected tracepoint__syscalls__sys_enter_getppid at line 6" in shown
    assert "; line 6: return *v;" in shown
    assert "Traceback" not in shown


def test_short_errors_off_shows_the_traceback(shell, capsys):
    shell.run_line_magic("config", "BpfnbMagics.short_errors = False")
    try:
        run(shell, "%%bpf broken\nint x(void *ctx) { return y; }\n")
        assert "Traceback" in capsys.readouterr().out
    finally:
        shell.run_line_magic("config", "BpfnbMagics.short_errors = True")


def test_bad_options_are_usage_errors(shell, capsys):
    result = run(shell, "%%bpf 1name\nint x(void *ctx) { return 0; }\n")
    assert type(result.error_in_exec).__name__ == "UsageError"
    result = run(shell, "%%bpf p --xdp lo,mode=turbo\nint x(void *ctx) { return 0; }\n")
    assert "XDP mode 'turbo'" in str(result.error_in_exec)
    assert "Traceback" not in capsys.readouterr().out


def test_explicit_attach_option_in_a_cell(shell, workload):
    cell = (
        "%%bpf calls --uprobe {binary}:bpfnb_target\n#include <uapi/linux/ptrace.h>\nBPF_ARRAY(n, u64, 1);\n"
        "int on_call(struct pt_regs *ctx) {{ int z = 0; n.increment(z); return 0; }}\n"
    ).format(binary=workload)
    assert run(shell, cell).success
    run_workload(workload, 25)
    program = shell.user_ns["calls"]
    assert program.bpf[b"n"][0].value == 25


def test_debug_prints_the_verifier_log(shell, capsys):
    assert run(shell, COUNTER_CELL.format(name="dbg", options="--debug bpf")).success
    out = capsys.readouterr().out
    assert "processed" in out and "insns" in out


def test_help_lists_the_options(shell):
    doc = shell.find_cell_magic("bpf").__doc__
    for option in ("--cflags", "--debug", "--no-attach", "--kprobe", "--uprobe", "--tracepoint", "--raw-tracepoint", "--perf-event", "--xdp", "--socket-filter"):
        assert option in doc


def test_cells_say_nothing_about_headers_unless_they_read_kernel_structs(shell, capsys):
    run(shell, COUNTER_CELL.format(name="first", options=""))
    run(shell, COUNTER_CELL.format(name="second", options=""))
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("code", "expected", "kind"),
    [
        ("%%bpf p\nTRACEPOINT_PROBE(sched, sched_sw", "sched_switch", "tracepoint"),
        ("%%bpf p\nBPF_HASH(counts, u32, u64);\nint f(void *ctx) { counts.incr", "increment", "map method"),
        ("%%bpf p\nint f(void *ctx) { bpf_ringbuf_res", "bpf_ringbuf_reserve", "helper"),
        ("%%bpf p\nTRACEPOINT_PROBE(sched, sched_switch) { return args->prev_p", "prev_pid", "tracepoint field"),
        ("%%bpf p\nBPF_RINGBUF", "BPF_RINGBUF_OUTPUT", "name"),
    ],
)
def test_completion_inside_bpf_cells(shell, code, expected, kind):
    from IPython.core.completer import provisionalcompleter

    with provisionalcompleter():
        completions = list(shell.Completer.completions(code, len(code)))
    assert expected in [c.text for c in completions]
    assert {c.type for c in completions if c.text == expected} == {kind}


def test_completion_after_prog_bracket_offers_its_map_names(shell):
    from IPython.core.completer import provisionalcompleter

    run(shell, COUNTER_CELL.format(name="syscalls", options="").replace("BPF_HASH(counts", "BPF_ARRAY(latency, u64, 4);\nBPF_HASH(counts"))
    shell.user_ns["maps"] = shell.user_ns["syscalls"].maps
    for code, expected in (('syscalls["', ["counts", "latency"]), ('syscalls["c', ["counts"]), ('maps["l', ["latency"])):
        with provisionalcompleter():
            completions = list(shell.Completer.completions(code, len(code)))
        assert [c.text for c in completions] == expected, code
    with pytest.raises(bpfnb.NoSuchMapError, match=r"has no map 'cnts': did you mean 'counts'\?"):
        shell.user_ns["syscalls"]["cnts"]


def test_the_stats_hint_shows_once_per_session_as_a_link(shell, monkeypatch):
    from bpfnb import program as program_module

    run(shell, COUNTER_CELL.format(name="first", options=""))
    run(shell, COUNTER_CELL.format(name="second", options=""))
    monkeypatch.setattr(program_module._STATS_HINT, "shown", False)  # as in a new session

    def shown(name: str) -> BeautifulSoup:
        bundle, _ = shell.display_formatter.format(shell.user_ns[name])
        return BeautifulSoup(bundle["text/html"], "html.parser")

    hint = shown("first").find(class_="bpfnb-note")
    assert hint.get_text().startswith("Run counts and run times are off: %bpf stats on turns them on")
    assert hint.code.get_text() == "%bpf stats on" and hint.a["href"].startswith("https://") and "`" not in hint.get_text()
    for again in ("second", "first"):
        assert "stats on" not in shown(again).get_text()


def test_completion_leaves_python_cells_alone(shell):
    from IPython.core.completer import provisionalcompleter

    code = "counts = 1\ncoun"
    with provisionalcompleter():
        assert "counts" in [c.text for c in shell.Completer.completions(code, len(code))]


def test_ls_lists_running_streams_only(shell):
    cell = (
        "%%bpf execs\nBPF_RINGBUF_OUTPUT(events, 8);\nTRACEPOINT_PROBE(syscalls, sys_enter_getppid) {\n"
        "    u32 pid = bpf_get_current_pid_tgid() >> 32;\n    events.ringbuf_output(&pid, sizeof(pid), 0);\n"
        "    return 0;\n}\n"
    )
    assert run(shell, cell).success
    stream = shell.user_ns["execs"].stream("events", event_type=ctypes.c_uint32)
    program, events = shell.run_line_magic("bpf", "ls").rows
    assert (program.name, program.kind, program.details) == ("execs", "program (bcc)", "tracepoint syscalls:sys_enter_getppid; maps events")
    assert (events.name, events.kind, events.state) == ('execs["events"]', "stream (ring buffer)", "running")
    stream.stop()
    (row,) = shell.run_line_magic("bpf", "ls").rows
    assert row.name == "execs"


def test_ls_measures_rates_and_costs_of_programs_streams_and_plots(shell):
    cell = (
        "%%bpf execs\nBPF_HASH(counts, u32, u64);\nBPF_RINGBUF_OUTPUT(events, 8);\n"
        "TRACEPOINT_PROBE(raw_syscalls, sys_enter) {\n"
        "    u32 pid = bpf_get_current_pid_tgid() >> 32;\n    counts.increment(pid);\n"
        "    events.ringbuf_output(&pid, sizeof(pid), 0);\n    return 0;\n}\n"
    )
    assert run(shell, cell).success
    program = shell.user_ns["execs"]
    stream = program.stream("events", event_type=ctypes.c_uint32)
    bars = program["counts"].live(kind="bar", top=3)
    deadline = time.monotonic() + 30
    while not (bars.frames and stream.received) and time.monotonic() < deadline:
        time.sleep(0.1)
    bpfnb.enable_stats()
    try:
        listing = shell.run_line_magic("bpf", "ls")
    finally:
        bpfnb.disable_stats()
    rows = {row.kind: row for row in listing.rows}
    assert list(rows) == ["program (bcc)", "stream (ring buffer)", "live bar"]
    # System calls happen all the time: the program ran during the window, and its cost was measured.
    prog_row = rows["program (bcc)"]
    assert prog_row.rate is not None and prog_row.rate > 0 and "ns a run" in prog_row.cost
    assert prog_row.rows is not None and prog_row.rows >= 1
    assert 0 < rows["stream (ring buffer)"].rows <= len(stream)  # the stream goes on receiving
    assert rows["stream (ring buffer)"].lost is not None and rows["stream (ring buffer)"].rate is not None
    live = rows["live bar"]
    assert (live.name, live.state) == ('execs["counts"]', "running") and "of a core" in live.cost
    page = BeautifulSoup(listing._repr_html_(), "html.parser")
    cells = [[td.get_text() for td in tr.find_all("td")] for tr in page.select("table.bpfnb-t tbody tr")]
    assert [c[0] for c in cells] == ["execs", 'execs["events"]', 'execs["counts"]']
    assert "<bpfnb." not in page.get_text() and "`" not in page.get_text()
    bars.stop()
    stream.stop()


def test_doctor_helpers_probes_and_stats_subcommands(shell, capsys):
    report = shell.run_line_magic("bpf", "doctor")
    assert report.ok and "<table" in report._repr_html_()
    browser = shell.run_line_magic("bpf", "helpers ringbuf --type xdp")
    assert browser.search.value == "ringbuf" and browser.prog_type.value == "xdp"
    assert "bpf_ringbuf_output" in browser.names.options
    fields = shell.run_line_magic("bpf", "probes sched:sched_switch")
    assert "prev_pid" in repr(fields)
    listing = shell.run_line_magic("bpf", "probes sched:*")
    assert "sched:sched_switch" in repr(listing)
    shell.run_line_magic("bpf", "stats on")
    try:
        assert bpfnb.kernel.stats.stats_enabled()
    finally:
        shell.run_line_magic("bpf", "stats off")
    assert "run time" in capsys.readouterr().out
