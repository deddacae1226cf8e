"""How bpfnb's errors present themselves in IPython."""

from __future__ import annotations

import bpfnb
from bpfnb import BpfnbError, CompileError, PrivilegeError
from bpfnb.errors import did_you_mean


def test_short_rendering_has_message_details_and_hint_but_no_traceback():
    error = CompileError("the C code does not compile", details="line 3:1: error: x", hint="fix it")
    lines = error._render_traceback_()
    assert "CompileError" in lines[0] and "the C code does not compile" in lines[0]
    assert lines[1] == "line 3:1: error: x"
    assert lines[-1].endswith("fix it")
    assert not any("Traceback" in line for line in lines)


def test_turning_short_errors_off_removes_the_renderer():
    BpfnbError.short = False
    try:
        assert not hasattr(CompileError("x"), "_render_traceback_")
    finally:
        BpfnbError.short = True
    assert hasattr(CompileError("x"), "_render_traceback_")


def test_privilege_and_setup_errors_point_at_the_doctor_by_default():
    assert "bpfnb doctor" in PrivilegeError("no").hint
    assert "no" == str(PrivilegeError("no")).splitlines()[0]


def test_every_error_is_exported_and_derives_from_the_root():
    errors = [getattr(bpfnb, name) for name in bpfnb.__all__ if name.endswith("Error")]
    assert len(errors) == 13
    assert all(issubclass(error, BpfnbError) for error in errors)
    assert all(error.__module__ == "bpfnb" for error in errors)


def test_an_interrupt_is_a_keyboard_interrupt_shown_in_one_line():
    interrupted = bpfnb.Interrupted("compiling")
    assert isinstance(interrupted, KeyboardInterrupt) and not isinstance(interrupted, Exception)
    (line,) = interrupted._render_traceback_()
    assert "interrupted while compiling: nothing was left loaded or attached" in line
    assert bpfnb.Interrupted.__module__ == "bpfnb"


def test_argument_and_map_errors_keep_their_python_meaning():
    assert issubclass(bpfnb.ArgumentError, ValueError)
    assert issubclass(bpfnb.NoSuchMapError, KeyError)
    assert str(bpfnb.NoSuchMapError("no map 'x'")) == "no map 'x'"


def test_did_you_mean_names_only_the_nearest_candidates():
    assert did_you_mean("no map 'cnts'", "cnts", ["counts", "latency"]) == "no map 'cnts': did you mean 'counts'?"
    near = did_you_mean("x", "sched:sched_swtich", ["sched:sched_switch", "sched:sched_wakeup"], show=str)
    assert near == "x: did you mean sched:sched_switch?"
    # Two equally near names are both offered; nothing near leaves the message as it was.
    assert did_you_mean("x", "ab1", ["ab2", "ab3", "zzz"]) == "x: did you mean 'ab2' or 'ab3'?"
    assert did_you_mean("no map 'zzz'", "zzz", ["counts"]) == "no map 'zzz'"
    assert did_you_mean("none", "a", []) == "none"
