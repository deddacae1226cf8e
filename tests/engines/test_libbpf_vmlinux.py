"""vmlinux.h: generated from the kernel's BTF, cached per kernel build, written atomically."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from bpfnb import SetupError
from bpfnb.cache import cache_root
from bpfnb.engines.libbpf import vmlinux
from bpfnb.engines.libbpf.vmlinux import vmlinux_header
from bpfnb.kernel.environment import KERNEL_BTF, kernel_btf_key

needs_btf = pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel has no BTF")


def _other_kernel(tmp_path: Path, letter: str) -> Path:
    """A copy of the kernel's BTF with one byte of its string section changed: another kernel build."""
    data = bytearray(KERNEL_BTF.read_bytes())
    data[-2] = ord(letter) if data[-2] != ord(letter) else ord(letter) + 1
    other = tmp_path / f"vmlinux-{letter}"
    other.write_bytes(bytes(data))
    return other


@needs_btf
def test_header_is_generated_under_the_kernel_key() -> None:
    header = vmlinux_header()
    assert header.parent.name == kernel_btf_key()
    assert header.parent.parent == cache_root() / "vmlinux"
    assert cache_root() == Path(os.environ["BPFNB_CACHE_DIR"])  # the run's private cache, never ~/.cache
    text = header.read_text()
    assert text.startswith("#ifndef __VMLINUX_H__")
    assert "struct task_struct {" in text


@needs_btf
def test_second_call_reuses_the_file() -> None:
    first = vmlinux_header()
    stamp = first.stat().st_mtime_ns
    assert vmlinux_header() == first
    assert first.stat().st_mtime_ns == stamp


@needs_btf
def test_other_btf_gets_another_key(tmp_path: Path) -> None:
    # A different kernel build means different BTF bytes: one changed byte in
    # the string section must be enough to get a header of its own.
    other = _other_kernel(tmp_path, "x")
    assert kernel_btf_key(other) != kernel_btf_key(KERNEL_BTF)
    assert vmlinux_header(other).parent != vmlinux_header().parent


def _generate(btf: str) -> str:
    return str(vmlinux_header(Path(btf)))


@needs_btf
def test_racing_processes_both_get_a_complete_header(tmp_path: Path) -> None:
    btf = _other_kernel(tmp_path, "m")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        paths = pool.map(_generate, [str(btf)] * 2)
    assert paths[0] == paths[1]
    header = Path(paths[0])
    assert header.read_text().rstrip().endswith("#endif /* __VMLINUX_H__ */")
    # No temporary file is left behind by either writer.
    assert sorted(p.name for p in header.parent.iterdir()) == ["vmlinux.h"]


def test_missing_btf_names_the_kernel_option(tmp_path: Path) -> None:
    with pytest.raises(SetupError) as caught:
        vmlinux_header(tmp_path / "no-such-btf")
    assert "has no BTF" in caught.value.message
    assert "CONFIG_DEBUG_INFO_BTF" in caught.value.hint


@needs_btf
def test_missing_bpftool_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    btf = _other_kernel(tmp_path, "q")  # a key with no header yet
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(vmlinux, "_BPFTOOL_FALLBACKS", ())
    with pytest.raises(SetupError) as caught:
        vmlinux_header(btf)
    assert "bpftool is not installed" in caught.value.message
    assert "apt-get install -y --no-install-recommends bpftool" in caught.value.hint
    assert not list((cache_root() / "vmlinux" / kernel_btf_key(btf)).glob("*"))


def test_bpftool_failing_leaves_no_header(tmp_path: Path) -> None:
    garbage = tmp_path / "not-btf"
    garbage.write_bytes(b"\x00" * 4096)
    with pytest.raises(SetupError) as caught:
        vmlinux_header(garbage)
    assert caught.value.message.startswith(f"bpftool could not write vmlinux.h from {garbage}")
    assert "bpftool btf dump file" in caught.value.hint
    assert list((cache_root() / "vmlinux" / kernel_btf_key(garbage)).iterdir()) == []
