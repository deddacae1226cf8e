"""The buffer layout of map reads, on bytes shaped as the kernel writes them (no root)."""

from __future__ import annotations

import numpy as np

from bpfnb.maps.io import MapLayout


def test_per_cpu_values_are_padded_to_eight_bytes_per_cpu():
    layout = MapLayout(np.dtype("u4"), np.dtype("u4"), cpus=3)
    assert layout.slot.itemsize == 24
    # Two keys; per CPU a u32 then 4 bytes of padding the kernel leaves as it likes.
    raw = b"".join(v.to_bytes(4, "little") + b"\xaa" * 4 for v in (1, 2, 3, 10, 20, 30))
    values = layout.values(np.frombuffer(raw, layout.slot))
    assert values.shape == (2, 3) and values.tolist() == [[1, 2, 3], [10, 20, 30]]


def test_per_cpu_struct_values_keep_their_fields():
    value = np.dtype({"names": ["n", "last"], "formats": ["u8", "u4"], "offsets": [0, 8], "itemsize": 16})
    layout = MapLayout(np.dtype("u4"), value, cpus=2)
    assert layout.slot.itemsize == 32
    slots = np.zeros(1, layout.slot)
    layout.values(slots)["n"] = [[5, 6]]
    assert slots.tobytes()[:8] == (5).to_bytes(8, "little")
    assert slots.tobytes()[16:24] == (6).to_bytes(8, "little")


def test_plain_maps_use_the_value_itself():
    layout = MapLayout(np.dtype("u4"), np.dtype("u8"))
    assert layout.slot == np.dtype("u8")
    slots = np.arange(3, dtype="u8")
    assert layout.values(slots) is slots
