"""What the BCC engine makes of BCC's own output and options, on recorded text."""

from __future__ import annotations

import pytest

from bpfnb import SetupError
from bpfnb.engines.bcc.compiler import _compile_error, parse_debug_flags


def test_missing_headers_is_a_setup_error_with_the_fix():
    error = _compile_error(
        "chdir(/lib/modules/6.18.0/build): No such file or directory\nUnable to find kernel headers. Try rebuilding "
        "kernel with CONFIG_IKHEADERS=m (module) or installing the kernel development package for your running "
        "kernel version.\n",
        source="",
        first_line=1,
    )
    assert isinstance(error, SetupError)
    assert "bpfnb doctor --fix" in error.hint


@pytest.mark.parametrize(("text", "flags"), [("0", 0), ("bpf", 2), ("bpf,source", 10), ("0x10", 16), (4, 4)])
def test_debug_flags(text, flags):
    assert parse_debug_flags(text) == flags


def test_unknown_debug_flag_names_the_choices():
    with pytest.raises(ValueError, match="llvm_ir, bpf, preprocessor"):
        parse_debug_flags("verbose")
