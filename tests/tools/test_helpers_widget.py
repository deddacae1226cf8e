"""The helper browser widget, driven the way a user drives it (typing, choosing filters)."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup

from bpfnb.tools.helpers import helpers
from bpfnb.tools.helpers_widget import HelpersBrowser


@pytest.fixture(scope="module")
def catalog():
    df = helpers(probe=False)
    # Give two helpers program types, as the kernel's verdict would.
    df["supported"] = [["xdp", "sched_cls"] if n == "bpf_xdp_adjust_head" else ["kprobe"] if n == "bpf_ringbuf_output" else [] for n in df["name"]]
    return df


def test_search_filters_and_documents(catalog) -> None:
    browser = HelpersBrowser(catalog, pattern="ringbuf")
    assert "bpf_ringbuf_output" in browser.names.options
    assert all("ringbuf" in n or "ring buffer" in catalog.set_index("name").loc[n, "description"] for n in browser.names.options)
    browser.names.value = "bpf_ringbuf_output"
    assert "long bpf_ringbuf_output(void *ringbuf, void *data, u64 size, u64 flags)" in browser.doc.value
    assert "<b>BPF_RB_NO_WAKEUP</b>" in browser.doc.value and "kprobe" in browser.doc.value
    browser.search.value = ""
    browser.prog_type.value = "xdp"
    assert browser.names.options == ("bpf_xdp_adjust_head",)
    browser.prog_type.value = "(any)"
    browser.category.value = "spin locks"
    assert browser.names.options == ("bpf_spin_lock", "bpf_spin_unlock")
    browser.search.value = "no such helper at all"
    assert browser.names.options == () and "no helper matches" in browser.doc.value
    assert "0 of" in repr(browser)


def test_the_notebook_that_shows_a_helper(catalog) -> None:
    browser = HelpersBrowser(catalog, pattern="bpf_sk_storage_")
    browser.names.value = "bpf_sk_storage_get"
    page = BeautifulSoup(browser.doc.value, "html.parser")
    shown = page.find(class_="bpfnb-h", string="Shown at work in")
    assert shown.find_next_sibling("div").get_text().startswith("11-sockets-cgroups-local-storage.ipynb § 2. Bytes per socket")
    browser.names.value = "bpf_sk_storage_delete"  # no notebook calls it
    assert "Shown at work in" not in browser.doc.value


def test_documentation_is_reflowed_and_labels_fit(catalog) -> None:
    browser = HelpersBrowser(catalog, pattern="bpf_map_lookup_elem")
    browser.names.value = "bpf_map_lookup_elem"
    page = BeautifulSoup(browser.doc.value, "html.parser")
    # The header breaks "...if no entry was" / "found." over two lines: shown, it is one paragraph.
    assert "Map value associated to key, or NULL if no entry was found." in [p.get_text() for p in page.find_all("p")]
    assert [h.get_text() for h in page.select(".bpfnb-h")][:2] == ["Returns", "Accepted by this kernel in"]
    for control in (browser.search, browser.category, browser.prog_type):
        assert control.style.description_width == "initial", control.description
    assert browser.names.layout.height == browser.doc.layout.height and browser.doc.layout.overflow == "auto"
