"""The public API is what bpfnb.__all__ lists, every name presented as bpfnb's own."""

from __future__ import annotations

import bpfnb


def test_all_is_sorted_and_complete():
    assert bpfnb.__all__ == sorted(bpfnb.__all__)
    # plot is a public module of plain plotting functions, not an object of the API.
    public = {name for name in vars(bpfnb) if not name.startswith("_")} - {"annotations", "Any", "plot"}
    assert public == set(bpfnb.__all__)


def test_exported_objects_name_bpfnb_as_their_module():
    for name in bpfnb.__all__:
        assert getattr(bpfnb, name).__module__ == "bpfnb", name
