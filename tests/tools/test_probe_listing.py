"""The display of probe listings (pure; listing real tracepoints is in tests/privileged)."""

from __future__ import annotations

from bpfnb.tools.probe_listing import ProbeList


def test_probe_list_display() -> None:
    listed = ProbeList("tracepoint", "x:*", tuple(f"x:e{i}" for i in range(250)))
    assert len(listed) == 250 and "x:e3" in listed
    text = repr(listed)
    assert text.splitlines()[0] == "250 tracepoint probe(s) matching 'x:*'"
    assert text.splitlines()[-1] == "... and 50 more"
    assert "... and 50 more" in listed._repr_html_()
