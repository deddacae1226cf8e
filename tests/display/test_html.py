"""The HTML building blocks, parsed: structure, alignment, escaping, and documentation reflowed."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup

from bpfnb.display.html import Markup, card, code, code_list, details, link, prose, table, text_table
from bpfnb.tools.helpers import find_header, helper_docs


def parse(markup: str) -> BeautifulSoup:
    return BeautifulSoup(markup, "html.parser")


def test_table_rows_cells_and_escaping() -> None:
    page = parse(card("t", table(["name", "rows", "details"], [("a<b", 1200, Markup("<code>x</code>")), ("c", 3, "d & e")],
                                 numeric=["rows"], nowrap=["name"])))
    rows = page.select("table.bpfnb-t tbody tr")
    assert [[td.get_text() for td in row.find_all("td")] for row in rows] == [["a<b", "1200", "x"], ["c", "3", "d & e"]]
    assert rows[0].find("code") is not None  # Markup goes in as it is
    classes = [th.get("class") for th in page.select("thead th")]
    assert classes == [["bpfnb-w"], ["bpfnb-n"], None]


def test_the_style_overrides_jupyterlabs_right_alignment() -> None:
    style = parse(card("t")).style.get_text()
    # JupyterLab right-aligns with `:not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td`: two classes and an
    # element. bpfnb's rule must be more specific (or equal and later) and say left.
    rule = re.search(r"\.bpfnb-card table\.bpfnb-t th,\.bpfnb-card table\.bpfnb-t td\{([^}]*)\}", style)
    assert rule and "text-align:left" in rule[1] and "overflow-wrap:anywhere" in rule[1]
    assert "max-width:100%" in style


def test_code_sets_backticks_as_code_and_leaves_none() -> None:
    page = parse(code("run `%bpf stats on` & `x<y`"))
    assert [c.get_text() for c in page.find_all("code")] == ["%bpf stats on", "x<y"]
    assert "`" not in str(page)


def test_code_list_link_and_details() -> None:
    names = parse(code_list(["sched_switch", "a<b"]))
    assert [c.get_text() for c in names.find_all("code")] == ["sched_switch", "a<b"]
    anchor = parse(link("docs", "https://example.org/?a=1&b=2")).a
    assert anchor["href"] == "https://example.org/?a=1&b=2" and anchor["target"] == "_blank"
    block = parse(details("3 ok", "<p>x</p>")).details
    assert block.summary.get_text() == "3 ok" and not block.has_attr("open")


def test_prose_joins_hard_wrapped_lines_into_paragraphs() -> None:
    text = "Map value associated to *key*, or **NULL** if no entry was\nfound.\n\nSecond ``para``\\ graph."
    page = parse(prose(text))
    paragraphs = page.find_all("p")
    assert [p.get_text() for p in paragraphs] == [
        "Map value associated to key, or NULL if no entry was found.",
        "Second paragraph.",
    ]
    assert paragraphs[0].i.get_text() == "key" and paragraphs[0].b.get_text() == "NULL"
    assert paragraphs[1].code.get_text() == "para"


def test_prose_keeps_lists_definitions_and_literal_blocks() -> None:
    text = (
        "*flags* is one of:\n\n"
        "**BPF_ANY**\n\tCreate a new element or update\n\tan existing one.\n"
        "**BPF_EXIST**\n\tUpdate an existing element.\n\n"
        "For example::\n\n"
        "\tbpftool prog show\n\t  id 42\n\n"
        "\t* ``a`` is the\n\t  first.\n\t* ``b`` the second.\n"
    )
    page = parse(prose(text))
    assert [(dt.get_text(), dd.get_text()) for dt, dd in zip(page.find_all("dt"), page.find_all("dd"))] == [
        ("BPF_ANY", "Create a new element or update an existing one."),
        ("BPF_EXIST", "Update an existing element."),
    ]
    assert page.find_all("p")[-1].get_text() == "For example:"
    assert page.pre.get_text() == "bpftool prog show\n  id 42"
    assert [li.get_text() for li in page.find_all("li")] == ["a is the first.", "b the second."]


def test_every_helper_of_the_header_reflows_without_markup_left_over() -> None:
    docs = helper_docs()
    assert len(docs) > 100, find_header()
    for doc in docs:
        page = parse(prose(doc.description) + prose(doc.returns))
        for paragraph in page.find_all(["p", "li", "dd"]):
            text = paragraph.get_text()
            assert "\n" not in text, (doc.name, text)
            assert "**" not in text and "``" not in text and "\\ " not in text, (doc.name, text)


@pytest.mark.parametrize("rows", [[], [("a", "b")]])
def test_text_table_pads_columns(rows) -> None:
    lines = text_table(["name", "value"], rows).splitlines()
    assert lines[0] == "name  value" and set(lines[1]) == {"-", " "}
    assert len(lines) == 2 + len(rows)
