"""Parsing tracefs ``format`` lines (pure; listing real tracepoints is in tests/privileged)."""

from __future__ import annotations

import pytest

from bpfnb.kernel.tracefs import TracepointField


@pytest.mark.parametrize(
    ("line", "name", "ctype", "offset", "size", "signed"),
    [
        ("\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;", "__syscall_nr", "int", 8, 4, True),
        ("\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;", "filename", "const char *", 24, 8, False),
        ("\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;", "prev_comm", "char[16]", 8, 16, False),
        ("\tfield:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;", "name", "__data_loc char[]", 8, 4, False),
        ("\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;", "common_type", "unsigned short", 0, 2, False),
    ],
)
def test_field_lines(line: str, name: str, ctype: str, offset: int, size: int, signed: bool) -> None:
    field = TracepointField.parse(line)
    assert field is not None
    assert (field.name, field.type, field.offset, field.size, field.signed) == (name, ctype, offset, size, signed)


def test_other_lines_are_not_fields() -> None:
    assert TracepointField.parse("name: sched_switch") is None
    assert TracepointField.parse('print fmt: "prev_comm=%s"') is None
