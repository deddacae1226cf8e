"""ELF sections read with ``struct`` alone, checked on a compiled BPF object."""

from __future__ import annotations

import pytest

from bpfnb import DecodeError
from bpfnb.decode.elf import elf_sections

from ..libbpf_cells import LAYOUT_CELL, compile_cell


def test_sections_of_a_compiled_object() -> None:
    image = compile_cell(LAYOUT_CELL).data
    sections = elf_sections(image)
    assert {"xdp", ".maps", "license", ".BTF", ".BTF.ext", ".symtab", ".strtab"} <= set(sections)
    assert sections["license"] == b"GPL\0"
    assert sections[".BTF"][:2] == b"\x9f\xeb"  # BTF's magic, little-endian


def test_what_is_not_an_elf_object_is_refused() -> None:
    image = compile_cell(LAYOUT_CELL).data
    for bad in (b"", b"\x7fELF", b"MZ" + image[2:], image[:64], image[: len(image) // 2]):
        with pytest.raises(DecodeError):
            elf_sections(bad)
