"""``%bpf helpers``: the helper catalog as a widget with search, filters and documentation."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..errors import ArgumentError, BpfnbError
from ..kernel.constants import PROG_TYPES
from .helpers import CATEGORIES, helpers

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HelpersBrowser", "helpers_widget", "rst_to_html"]

_ANY = "(any)"


def rst_to_html(text: str) -> str:
    """The header's light reStructuredText (``**bold**``, ``*italic*``, blank-line paragraphs) as HTML."""
    escaped = html.escape(text).replace("\\ ", "")
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", escaped)
    escaped = re.sub(r"\*(\S(?:.*?\S)?)\*", r"<i>\1</i>", escaped)
    paragraphs = [p for p in re.split(r"\n\s*\n", escaped) if p.strip()]
    return "".join(f"<p style='white-space:pre-wrap;margin:4px 0'>{p}</p>" for p in paragraphs)


class HelpersBrowser(widgets.VBox):
    """A search box, category and program-type filters, the matching helpers, and the selected one's documentation."""

    def __init__(self, catalog: pd.DataFrame, *, pattern: str = "", prog_type: str | None = None, remark: str = "") -> None:
        self.catalog = catalog
        types = sorted({t for ts in catalog["supported"] for t in ts})
        self.search = widgets.Text(value=pattern, placeholder="name contains…", description="search")
        self.category = widgets.Dropdown(options=[_ANY, *CATEGORIES], description="category")
        self.prog_type = widgets.Dropdown(
            options=[_ANY, *types], value=prog_type if prog_type in types else _ANY, description="program type"
        )
        self.names = widgets.Select(options=[], rows=14, layout=widgets.Layout(width="34%"))
        self.doc = widgets.HTML(layout=widgets.Layout(width="64%"))
        self.count = widgets.HTML()
        for control in (self.search, self.category, self.prog_type):
            control.observe(self._on_filter_changed, names="value")
        self.names.observe(self._on_selection_changed, names="value")
        header = widgets.HBox([self.search, self.category, self.prog_type])
        parts: list[widgets.Widget] = [header, self.count, widgets.HBox([self.names, self.doc])]
        if remark:
            parts.insert(1, widgets.HTML(f"<i>{html.escape(remark)}</i>"))
        super().__init__(parts)
        self._on_filter_changed()

    def visible(self) -> pd.DataFrame:
        """The rows the filters let through."""
        df = self.catalog
        text = self.search.value.strip().lower()
        if text:
            df = df[df["name"].str.lower().str.contains(text, regex=False) | df["description"].str.lower().str.contains(text, regex=False)]
        if self.category.value != _ANY:
            df = df[df["category"] == self.category.value]
        if self.prog_type.value != _ANY:
            df = df[df["supported"].map(lambda types: self.prog_type.value in types)]
        return df

    def _on_filter_changed(self, _change: object = None) -> None:
        df = self.visible()
        self.count.value = f"{len(df)} of {len(self.catalog)} helpers"
        self.names.options = list(df["name"])
        self.names.value = self.names.options[0] if self.names.options else None
        self._on_selection_changed()

    def _on_selection_changed(self, _change: object = None) -> None:
        if self.names.value is None:
            self.doc.value = "<i>no helper matches</i>"
            return
        row = self.catalog[self.catalog["name"] == self.names.value].iloc[0]
        supported = ", ".join(row["supported"]) or "no program type that could be loaded here"
        conditions = "".join(
            f"<li>{html.escape(t)}: {html.escape(why)}</li>" for t, why in (row["conditions"] or {}).items()
        )
        self.doc.value = (
            f"<div style='font-size:13px'><code>{html.escape(row['signature'] or row['name'])}</code>"
            f"<div>id {row['id']} · {html.escape(row['category'])}</div>"
            f"{rst_to_html(row['description'])}"
            + (f"<b>Returns</b>{rst_to_html(row['returns'])}" if row["returns"] else "")
            + f"<b>Accepted by this kernel in</b><div>{html.escape(supported)}</div>"
            + (f"<b>Only under a condition</b><ul>{conditions}</ul>" if conditions else "")
            + (f"<b>Shown at work in</b><div>{html.escape(row['example'])}</div>" if row["example"] else "")
            + "</div>"
        )

    def __repr__(self) -> str:
        return f"<HelpersBrowser {self.count.value}; selected {self.names.value}>"


def helpers_widget(pattern: str | None = None, *, prog_type: str | None = None) -> HelpersBrowser:
    """The helper catalog as an interactive browser (what ``%bpf helpers [pattern] [--type T]`` shows).

    Without root the kernel cannot be asked which program types accept each
    helper; the browser then shows the header's documentation and says so.
    """
    remark = ""
    try:
        catalog = helpers()
    except BpfnbError as exc:
        catalog = helpers(probe=False)
        remark = f"Program types are not shown: {exc.message}"
    if prog_type is not None:
        prog_type = prog_type.lower().removeprefix("bpf_prog_type_")
        if prog_type not in PROG_TYPES:
            raise ArgumentError(f"unknown program type {prog_type!r}; expected one of {', '.join(sorted(PROG_TYPES))}")
    return HelpersBrowser(catalog, pattern=pattern or "", prog_type=prog_type, remark=remark)
