"""Source numbering and the reading of clang's and the verifier's output, on recorded text."""

from __future__ import annotations

from pathlib import Path

from bpfnb import CompileError
from bpfnb.engines.diagnostics import cell_diagnostics, compile_error, number_lines, verifier_tail

FIXTURES = Path(__file__).parents[1] / "data"


def test_every_line_gets_its_number_except_macro_continuations():
    source = "int a;\n#define TWO \\\n    2\nint b;"
    assert number_lines(source, first_line=2).splitlines() == [
        '#line 2 "__bpfnb_source__"',
        "int a;",
        '#line 3 "__bpfnb_source__"',
        "#define TWO \\",
        "    2",
        '#line 5 "__bpfnb_source__"',
        "int b;",
    ]


def test_diagnostics_keep_the_users_lines_and_drop_bccs_internals():
    output = (FIXTURES / "clang_two_errors.txt").read_text()
    shown = cell_diagnostics(output)
    assert shown.splitlines()[0] == "line 5:47: error: expected ';' at end of declaration"
    assert "line 9:19: error: no member named 'prev_pidd'" in shown
    assert "helpers.h" not in shown and "expanded from macro" not in shown


def test_compile_error_names_the_first_error_and_counts_them():
    error = compile_error((FIXTURES / "clang_two_errors.txt").read_text())
    assert isinstance(error, CompileError)
    assert error.message == "the C code does not compile: 2 errors; first: expected ';' at end of declaration (line 5)"
    assert error.line == 5


def test_verifier_tail_points_at_the_users_line():
    source = "BPF_HASH(counts, u32, u64);\nTRACEPOINT_PROBE(a, b) {\n    u32 pid = 1;\n    u64 *v = counts.lookup(&pid);\n    return *v;\n}"
    tail, line, complaint = verifier_tail((FIXTURES / "verifier_null_deref.log").read_text(), source, 2)
    assert line == 6
    assert complaint == "R0 invalid mem access 'map_value_or_null'"
    assert "; line 6: return *v;" in tail
    assert "; line 5: u64 *v = counts.lookup(&pid);" in tail
    assert "@ __bpfnb_source__:0" not in tail
    assert tail.splitlines()[-1].startswith("HINT: The 'map_value_or_null' error")
