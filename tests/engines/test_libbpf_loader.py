"""LibbpfObject before load: opening needs no privileges and touches no kernel state."""

from __future__ import annotations

import ctypes

import pytest

from bpfnb import BpfnbError, LoadError
from bpfnb.decode.btf import Btf, map_definitions
from bpfnb.engines.libbpf.loader import LibbpfObject

from ..libbpf_cells import GLOBALS_CELL, LAYOUT_CELL, compile_cell


def test_bytes_that_are_not_an_object_cannot_be_opened() -> None:
    with pytest.raises(LoadError) as caught:
        LibbpfObject.open(b"not an ELF object" * 4, "garbage")
    assert caught.value.message == "libbpf could not open the object: BPF object format invalid"
    assert "'garbage' is not a proper ELF object" in caught.value.details


def test_programs_and_maps_are_listed_before_load() -> None:
    with LibbpfObject.open(compile_cell(LAYOUT_CELL).data, "listing") as obj:
        fill = obj.programs["fill"]
        assert (fill.section, fill.type_name, fill.fd, fill.attached) == ("xdp", "xdp", -1, False)
        maps = obj.maps
        assert list(maps) == ["alls", "overlaps"]
        assert maps["alls"].fd == -1 and maps["alls"].type_name == "array"
        assert obj.name == "listing" and not obj.closed
        with pytest.raises(BpfnbError, match="not loaded"):
            obj.program_fd("fill")
        with pytest.raises(BpfnbError, match="load"):
            obj.attach_all()
        with pytest.raises(KeyError, match="no program 'nope'"):
            obj.set_autoattach("nope", False)


def test_map_types_from_libbpf_agree_with_the_maps_section() -> None:
    compiled = compile_cell(LAYOUT_CELL)
    elf_btf = Btf.from_elf(compiled.data)
    definitions = map_definitions(elf_btf)
    with LibbpfObject.open(compiled.data, "agree") as obj:
        for name, info in obj.maps.items():
            definition = definitions[name]
            assert info.key_type_id == definition.key_type_id
            assert info.value_type_id == definition.value_type_id
            assert info.max_entries == definition.max_entries
            assert info.value_type is not None and ctypes.sizeof(info.value_type) == info.value_size
            assert info.value_type.__name__ == elf_btf.type(definition.value_type_id).name


@pytest.mark.parametrize(("object_name", "prefix"), [("globals", "globals"), ("cell_number_12", "cell_num")])
def test_global_variables_become_maps_named_after_the_object(object_name: str, prefix: str) -> None:
    with LibbpfObject.open(compile_cell(GLOBALS_CELL).data, object_name) as obj:
        maps = obj.maps
        # libbpf names the maps it makes for globals "<first 8 chars of the object name>.<section>".
        assert sorted(maps) == sorted([f"{prefix}.bss", f"{prefix}.data", f"{prefix}.rodata", "shared"])
        assert all(maps[f"{prefix}.{s}"].internal for s in ("bss", "data", "rodata"))
        assert not maps["shared"].internal
        fields = {s: [n for n, *_ in getattr(maps[f"{prefix}.{s}"].value_type, "_fields_")] for s in ("bss", "data", "rodata")}
        assert fields == {"bss": ["calls"], "data": ["offset"], "rodata": ["step"]}


def test_initial_values_only_for_existing_maps() -> None:
    with LibbpfObject.open(compile_cell(GLOBALS_CELL).data, "initial") as obj:
        rodata = obj.maps["initial.rodata"]
        assert rodata.value_type is not None
        obj.set_initial_value("initial.rodata", rodata.value_type(step=3))
        with pytest.raises(KeyError):
            obj.set_initial_value("no_such_map", rodata.value_type())
        with pytest.raises(BpfnbError):
            obj.set_initial_value("initial.rodata", ctypes.c_uint8(1))  # wrong size


def test_closed_object_refuses_use() -> None:
    obj = LibbpfObject.open(compile_cell(GLOBALS_CELL).data, "closing")
    obj.close()
    obj.close()
    assert obj.closed
    with pytest.raises(BpfnbError, match="closed"):
        _ = obj.maps
    with pytest.raises(BpfnbError, match="closed"):
        obj.load()
