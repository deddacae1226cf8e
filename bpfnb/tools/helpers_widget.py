"""``%bpf helpers``: the helper catalog as a widget with search, filters and documentation."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as widgets

from ..display.html import card, heading, note, prose
from ..errors import ArgumentError, BpfnbError
from ..kernel.constants import PROG_TYPES
from .helpers import CATEGORIES, helpers

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HelpersBrowser", "helpers_widget"]

_ANY = "(any)"


class HelpersBrowser(widgets.VBox):
    """A search box, category and program-type filters, the matching helpers, and the selected one's documentation."""

    def __init__(self, catalog: pd.DataFrame, *, pattern: str = "", prog_type: str | None = None, remark: str = "") -> None:
        self.catalog = catalog
        types = sorted({t for ts in catalog["supported"] for t in ts})
        # Labels as wide as their words, so that none is cut to "program t…".
        label = {"description_width": "initial"}
        self.search = widgets.Text(value=pattern, placeholder="name contains…", description="search", style=label)
        self.category = widgets.Dropdown(options=[_ANY, *CATEGORIES], description="category", style=label)
        self.prog_type = widgets.Dropdown(
            options=[_ANY, *types], value=prog_type if prog_type in types else _ANY, description="program type",
            style=label,
        )
        # List and documentation share one height (the documentation scrolls), leaving no blank area under either.
        self.names = widgets.Select(options=[], layout=widgets.Layout(width="32%", min_width="16em", height="24em"))
        self.doc = widgets.HTML(layout=widgets.Layout(width="66%", height="24em", overflow="auto", padding="0 8px"))
        self.count = widgets.HTML()
        for control in (self.search, self.category, self.prog_type):
            control.observe(self._on_filter_changed, names="value")
        self.names.observe(self._on_selection_changed, names="value")
        header = widgets.HBox([self.search, self.category, self.prog_type], layout=widgets.Layout(flex_flow="row wrap"))
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
            self.doc.value = card("no helper matches", note("Change the search text or the filters."))
            return
        row = self.catalog[self.catalog["name"] == self.names.value].iloc[0]
        supported = ", ".join(row["supported"]) or "no program type that could be loaded here"
        conditions = "".join(
            f"<li>{html.escape(t)}: {html.escape(why)}</li>" for t, why in (row["conditions"] or {}).items()
        )
        parts = [
            f"<pre>{html.escape(row['signature'] or row['name'])}</pre>",
            f"<div>id {row['id']} · {html.escape(row['category'])}</div>",
            prose(row["description"]),
        ]
        if row["returns"]:
            parts += [heading("Returns"), prose(row["returns"])]
        parts += [heading("Accepted by this kernel in"), f"<div>{html.escape(supported)}</div>"]
        if conditions:
            parts += [heading("Only under a condition"), f"<ul>{conditions}</ul>"]
        if row["example"]:
            parts += [heading("Shown at work in"), f"<div>{html.escape(row['example'])}</div>"]
        self.doc.value = card(row["name"], *parts)

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
