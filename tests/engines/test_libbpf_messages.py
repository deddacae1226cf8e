"""libbpf through ctypes: its print callback captured per thread, and option structs laid out as its headers say."""

from __future__ import annotations

import ctypes
import logging
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from bpfnb.engines.libbpf.bindings import PRINT_FN, BpfObjectOpenOpts, BpfUprobeOpts, errno_text, libbpf
from bpfnb.engines.libbpf.explain import known_sections, unknown_section_error
from bpfnb.engines.libbpf.messages import capture_libbpf_output
from bpfnb.kernel.libbpf import ProgLoadOpts, TestRunOpts


def _guess_type(name: bytes) -> None:
    prog_type, attach_type = ctypes.c_int(), ctypes.c_int()
    libbpf().libbpf_prog_type_by_name(name, ctypes.byref(prog_type), ctypes.byref(attach_type))


# ---------------------------------------------------------------- the print callback


def test_messages_are_formatted_from_the_va_list() -> None:
    with capture_libbpf_output() as messages:
        _guess_type(b"no_such_section/x")
    # libbpf's format is "failed to guess program type from ELF section '%s'\n".
    assert messages[0].text == "libbpf: failed to guess program type from ELF section 'no_such_section/x'\n"
    assert messages[0].level == "debug"


def test_long_messages_are_not_truncated() -> None:
    # The list of section names is one message of about 1 KiB: it must arrive
    # whole, from the first name of libbpf's table to the last.
    names = known_sections()
    assert len(" ".join(names)) >= 900
    assert names[0] == "socket"
    if (libbpf().libbpf_major_version(), libbpf().libbpf_minor_version()) == (1, 1):
        assert names[:2] == ["socket", "sk_reuseport/migrate"]
        assert names[-1] == "sk_lookup"
    assert {"tracepoint+", "tp_btf+", "xdp", "uprobe+", "perf_event"} <= set(names)


def test_unknown_section_error_lists_names_as_a_user_writes_them() -> None:
    error = unknown_section_error("odd", "nope/x")
    assert error.message.startswith("SEC(\"nope/x\") of program 'odd' is not a section libbpf knows")
    listed = error.details.splitlines()[1].strip().split(", ")
    assert {"tracepoint[/...]", "tp_btf[/...]", "xdp", "perf_event"} <= set(listed)
    assert not any(name.endswith("+") for name in listed)


def test_each_thread_gets_only_its_own_messages() -> None:
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def work(tag: str) -> None:
        barrier.wait()
        with capture_libbpf_output() as messages:
            for _ in range(200):
                _guess_type(f"{tag}/x".encode())
        results[tag] = [m.text for m in messages]

    threads = [threading.Thread(target=work, args=(f"thread{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [f"thread{i}" for i in range(4)]
    for tag, texts in results.items():
        assert len(texts) == 400  # libbpf prints two lines per failed guess
        assert all(f"'{tag}/x'" in t for t in texts[::2])


def test_nested_captures_resume_the_outer_one() -> None:
    with capture_libbpf_output() as outer:
        _guess_type(b"first/x")
        with capture_libbpf_output() as inner:
            _guess_type(b"second/x")
        _guess_type(b"third/x")
    assert ["first" in m.text for m in outer[::2]] == [True, False]
    assert "third" in outer[2].text
    assert "second" in inner[0].text


def test_uncaptured_messages_go_to_logging(caplog: pytest.LogCaptureFixture) -> None:
    with capture_libbpf_output():
        pass  # installs the callback
    with caplog.at_level(logging.DEBUG, logger="bpfnb.libbpf"):
        _guess_type(b"logged/x")
    assert any("'logged/x'" in r.getMessage() for r in caplog.records)


def test_capture_survives_another_user_of_libbpf_replacing_the_callback() -> None:
    # BCC, which uses the same libbpf.so.1, sets the print callback to NULL
    # whenever it builds a module.
    with capture_libbpf_output():
        pass
    libbpf().libbpf_set_print(PRINT_FN())  # a NULL callback, as BCC sets
    with capture_libbpf_output() as messages:
        _guess_type(b"after_replacement/x")
    assert any("'after_replacement/x'" in m.text for m in messages)


def test_errno_text_names_the_code_and_libbpf_own_codes() -> None:
    assert errno_text(1) == "EPERM (Operation not permitted)"
    assert errno_text(-2) == "ENOENT (No such file or directory)"
    assert errno_text(4001) == "BPF object format invalid"  # LIBBPF_ERRNO__FORMAT


# ---------------------------------------------------------------- the ABI

STRUCTS: dict[str, type[ctypes.Structure]] = {
    "bpf_object_open_opts": BpfObjectOpenOpts,
    "bpf_uprobe_opts": BpfUprobeOpts,
    "bpf_test_run_opts": TestRunOpts,
    "bpf_prog_load_opts": ProgLoadOpts,
}


def _c_layout(tmp_path: Path) -> dict[str, int]:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang-14")
    if compiler is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("needs a C compiler and libbpf-dev's headers")
    lines = []
    for struct, ctype in STRUCTS.items():
        lines.append(f'printf("{struct} %zu\\n", sizeof(struct {struct}));')
        for name, *_ in getattr(ctype, "_fields_"):
            if not name.startswith("_"):
                lines.append(f'printf("{struct}.{name} %zu\\n", offsetof(struct {struct}, {name}));')
    source = tmp_path / "layout.c"
    source.write_text(
        "#include <stddef.h>\n#include <stdio.h>\n#include <bpf/libbpf.h>\n#include <bpf/bpf.h>\n"
        "int main(void) {\n" + "\n".join(lines) + "\nreturn 0; }\n"
    )
    binary = tmp_path / "layout"
    subprocess.run([compiler, str(source), "-o", str(binary)], check=True, capture_output=True)
    out = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout
    return {key: int(value) for key, value in (line.split() for line in out.splitlines())}


def test_option_structs_match_the_c_headers(tmp_path: Path) -> None:
    layout = _c_layout(tmp_path)
    for struct, ctype in STRUCTS.items():
        assert ctypes.sizeof(ctype) == layout[struct], struct
        for name, *_ in getattr(ctype, "_fields_"):
            if not name.startswith("_"):
                assert getattr(ctype, name).offset == layout[f"{struct}.{name}"], f"{struct}.{name}"


def test_the_library_is_libbpf_1_1_or_newer() -> None:
    lib = libbpf()
    assert (lib.libbpf_major_version(), lib.libbpf_minor_version()) >= (1, 1)
