"""The display of probe listings (pure; listing real tracepoints is in tests/privileged)."""

from __future__ import annotations

from bs4 import BeautifulSoup

from bpfnb.tools.probe_listing import ProbeList


def test_probe_list_display() -> None:
    listed = ProbeList("tracepoint", "x:*", tuple(f"x:e{i}" for i in range(250)))
    assert len(listed) == 250 and "x:e3" in listed
    text = repr(listed)
    assert text.splitlines()[0] == "250 tracepoint probe(s) matching 'x:*'"
    assert text.splitlines()[-1] == "... and 50 more"
    assert "... and 50 more" in listed._repr_html_()


def test_probe_list_html_is_a_table_of_categories_with_wrapping_names() -> None:
    listed = ProbeList("tracepoint", "*", ("sched:sched_switch", "sched:sched_wakeup", "irq:irq_handler_entry"))
    page = BeautifulSoup(listed._repr_html_(), "html.parser")
    rows = page.select("table.bpfnb-t tbody tr")
    assert [row.td.get_text() for row in rows] == ["sched", "irq"]
    assert [c.get_text() for c in rows[0].select(".bpfnb-list code")] == ["sched_switch", "sched_wakeup"]
    assert [th.get_text() for th in page.select("thead th")] == ["category", "probes"]
    assert "tracepoint:" not in page.get_text()


def test_kprobe_list_html_has_one_group() -> None:
    page = BeautifulSoup(ProbeList("kprobe", "vfs_*", ("vfs_read", "vfs_write"))._repr_html_(), "html.parser")
    assert [row.td.get_text() for row in page.select("tbody tr")] == ["kprobe"]
