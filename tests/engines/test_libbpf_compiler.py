"""compile_object: clang in a child process, cell line numbers, crashes, the object cache."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import pytest

from bpfnb import CompileError, SetupError
from bpfnb.decode.btf import Btf
from bpfnb.decode.elf import elf_sections
from bpfnb.engines.diagnostics import SOURCE_FILE
from bpfnb.engines.libbpf.compiler import compile_object, find_clang, target_arch

from ..libbpf_cells import HEADER, LICENSE, cell_line, compile_cell

SMALL = """
SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    bpf_printk("getppid");
    return 0;
}
""" + LICENSE


def test_compiles_an_elf_object_with_btf() -> None:
    compiled = compile_cell(SMALL)
    sections = elf_sections(compiled.data)
    assert "tracepoint/syscalls/sys_enter_getppid" in sections
    assert ".BTF" in sections and ".BTF.ext" in sections
    assert compiled.path.read_bytes() == compiled.data
    assert compiled.warnings == ()


def test_second_compile_comes_from_the_cache() -> None:
    body = SMALL.replace('getppid")', 'getppid again")')
    cold = compile_cell(body)
    warm = compile_cell(body)
    assert not cold.cached and warm.cached
    assert warm.data == cold.data and warm.key == cold.key and warm.path == cold.path


def test_cache_key_covers_flags_and_first_line() -> None:
    base = compile_cell(SMALL)
    assert compile_object(HEADER + SMALL, first_line=3).key != base.key
    assert compile_object(HEADER + SMALL, first_line=2, cflags=("-DX=1",)).key != base.key


def test_editing_an_included_prelude_is_a_new_cache_key(tmp_path: Path) -> None:
    prelude = tmp_path / "prelude.h"
    prelude.write_text("#define GREETING \"hello\"\n")
    body = SMALL.replace('bpf_printk("getppid")', "bpf_printk(GREETING)")
    first = compile_object(HEADER + body, first_line=2, cflags=("-include", str(prelude)))
    prelude.write_text("#define GREETING \"hello, again\"\n")
    second = compile_object(HEADER + body, first_line=2, cflags=("-include", str(prelude)))
    assert second.key != first.key and not second.cached and second.data != first.data


def test_a_cache_entry_without_its_object_is_compiled_again() -> None:
    body = SMALL.replace('getppid")', 'getppid removed")')
    first = compile_cell(body)
    first.path.unlink()
    again = compile_cell(body)
    assert not again.cached and again.data == first.data and again.path.exists()


def test_cache_entries_are_written_atomically() -> None:
    compiled = compile_cell(SMALL)
    leftovers = [p for p in compiled.path.parent.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert leftovers == []


def test_error_points_at_the_cell_line() -> None:
    body = SMALL.replace('bpf_printk("getppid");', 'bpf_printk("getppid");\n    undeclared = 1;')
    with pytest.raises(CompileError) as caught:
        compile_cell(body)
    # Line 1 is %%bpf, then the includes, then the body's blank first line.
    line = cell_line(body, "    undeclared = 1;")
    assert caught.value.line == line
    assert caught.value.message == f"the C code does not compile: use of undeclared identifier 'undeclared' (line {line})"
    assert caught.value.details.splitlines() == [
        f"line {line}:5: error: use of undeclared identifier 'undeclared'",
        "    undeclared = 1;",
        "    ^",
    ]


def test_all_errors_are_in_details_and_counted() -> None:
    body = SMALL.replace("return 0;", "a = 1;\n    b = 2;\n    return 0;")
    with pytest.raises(CompileError) as caught:
        compile_cell(body)
    line = cell_line(body, "    a = 1;")
    assert caught.value.message == f"the C code does not compile: 2 errors; first: use of undeclared identifier 'a' (line {line})"
    assert f"line {line}:5: error: use of undeclared identifier 'a'" in caught.value.details
    assert f"line {line + 1}:5: error: use of undeclared identifier 'b'" in caught.value.details


def test_warnings_are_kept_apart_and_survive_the_cache() -> None:
    body = SMALL.replace("return 0;", "int unused_value = 1 << 40;\n    return 0;")
    first = compile_cell(body)
    again = compile_cell(body)
    assert again.cached
    for compiled in (first, again):
        assert [w.severity for w in compiled.warnings] == ["warning"]
        assert "shift count >= width of type" in compiled.warnings[0].message
        assert compiled.warnings[0].cell_line == cell_line(body, "    int unused_value = 1 << 40;")
    assert first.warnings == again.warnings


def test_error_inside_a_header_names_the_including_line() -> None:
    with pytest.raises(CompileError) as caught:
        compile_object('#include "vmlinux.h"\n#include <bpf/no_such_header.h>\n', first_line=2)
    assert caught.value.line == 3
    assert caught.value.message == "the C code does not compile: 'bpf/no_such_header.h' file not found (line 3)"
    assert "libbpf-dev" in caught.value.hint


def test_a_clang_crash_is_a_compile_error_with_its_last_words() -> None:
    # The pragma makes clang crash on purpose (SIGILL through its crash handler).
    with pytest.raises(CompileError) as caught:
        compile_object("int x;\n#pragma clang __debug crash\n", first_line=2)
    error = caught.value
    assert error.message.startswith("clang crashed: clang frontend command failed")
    assert error.message.endswith("(SIGILL)")
    assert "Stack dump:" in error.details
    assert f"{SOURCE_FILE}:3:" in error.details  # clang's own note of where it was
    assert error.line == 3
    assert " #0 0x" not in error.details  # machine backtrace dropped


def test_a_backend_fatal_error_is_a_compile_error_at_its_line() -> None:
    # Using the result of __sync_fetch_and_add on BPF makes LLVM 14 abort.
    body = "\nint add(int *p)\n{\n    return __sync_fetch_and_add(p, 1);\n}\n"
    with pytest.raises(CompileError) as caught:
        compile_cell(body)
    error = caught.value
    assert "Invalid usage of the XADD return value" in error.message
    assert error.line == cell_line(body, "    return __sync_fetch_and_add(p, 1);")


def test_crash_leaves_no_reproducer_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A private temporary directory: other compiles may run beside this test.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(CompileError):
        compile_object("#pragma clang __debug crash\n")
    assert list(tmp_path.iterdir()) == []


def test_a_timeout_stops_clang() -> None:
    body = SMALL.replace('getppid")', 'getppid slow")')
    with pytest.raises(CompileError) as caught:
        compile_object(HEADER + body, first_line=2, timeout=0.001)
    assert "did not finish within 0.001 s" in caught.value.message


def _line_info(image: bytes) -> list[tuple[str, int, str]]:
    """(file name, line, source text) of every BTF line-info record, read the
    way the kernel reads .BTF.ext (test-local: the engine leaves this to libbpf)."""
    btf = Btf.from_elf(image)
    ext = elf_sections(image)[".BTF.ext"]
    hdr_len, _fo, _fl, line_off, line_len = struct.unpack_from("<IIIII", ext, 4)
    data = ext[hdr_len + line_off : hdr_len + line_off + line_len]
    record_size = struct.unpack_from("<I", data)[0]
    records, position = [], 4
    while position < len(data):
        _section, count = struct.unpack_from("<II", data, position)
        position += 8
        for _ in range(count):
            _insn, file_off, line_off_, line_col = struct.unpack_from("<IIII", data, position)
            records.append((btf.string(file_off), line_col >> 10, btf.string(line_off_)))
            position += record_size
    return records


def test_btf_line_info_uses_cell_numbering() -> None:
    # The verifier prints BTF line info as "; <text> @ file:line": the file
    # must be the cell and the numbers the cell's.
    records = _line_info(compile_cell(SMALL).data)
    printk_line = cell_line(SMALL, '    bpf_printk("getppid");')
    assert all(os.path.basename(name) == SOURCE_FILE for name, _line, _text in records)
    assert (printk_line, '    bpf_printk("getppid");') in {(line, text) for _n, line, text in records}


def test_first_line_must_be_positive() -> None:
    with pytest.raises(ValueError):
        compile_object(SMALL, first_line=0)


def test_target_arch_names() -> None:
    assert target_arch("x86_64") == "x86"
    assert target_arch("aarch64") == "arm64"
    with pytest.raises(SetupError) as caught:
        target_arch("pdp11")
    assert "-D__TARGET_ARCH_" in caught.value.hint


def test_clang_is_found_or_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert os.access(find_clang(), os.X_OK)
    find_clang.cache_clear()
    monkeypatch.setenv("BPFNB_CLANG", "no-such-clang-binary")
    try:
        with pytest.raises(SetupError) as caught:
            find_clang()
        assert "BPFNB_CLANG names 'no-such-clang-binary'" in caught.value.message
        monkeypatch.delenv("BPFNB_CLANG")
        monkeypatch.setenv("PATH", "/nonexistent")
        find_clang.cache_clear()
        with pytest.raises(SetupError) as caught:
            find_clang()
        assert caught.value.message.startswith("clang is not installed")
        assert "clang-14" in caught.value.hint
    finally:
        find_clang.cache_clear()


def test_uapi_headers_of_the_host_are_found() -> None:
    # <linux/bpf.h> needs <asm/types.h>, which Debian keeps in the host's
    # multiarch directory: a directory -target bpf does not search by itself.
    source = '#include <linux/bpf.h>\n#include <linux/if_ether.h>\n#include <bpf/bpf_helpers.h>\n'
    source += 'SEC("xdp")\nint pass(struct xdp_md *ctx) { return ETH_P_IP ? XDP_PASS : XDP_DROP; }\n' + LICENSE
    compiled = compile_object(source, first_line=2)
    assert "xdp" in elf_sections(compiled.data)
