"""How a map shows itself, live or recorded: a title, then a text (a histogram) or the first rows of its frame."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from . import html as _html

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Previewed"]


class Previewed:
    """``__repr__`` and ``_repr_html_`` made from ``_title()`` and ``_preview()``; a failing preview shows why."""

    def _title(self) -> str:
        raise NotImplementedError

    def _preview(self) -> tuple[str, pd.DataFrame | None]:
        """A text to show as it is, or (text empty) the rows to show as a table."""
        raise NotImplementedError

    def __repr__(self) -> str:
        try:
            text, head = self._preview()
        except Exception as exc:  # a display must not raise: show why instead
            text, head = f"({type(exc).__name__}: {exc})", None
        body = text if head is None else head.to_string(max_cols=12)
        return f"<bpfnb {self._title()}>\n{body}"

    def _repr_html_(self) -> str:
        try:
            text, head = self._preview()
        except Exception as exc:  # a display must not raise: show why instead
            return _html.card(self._title(), _html.note(f"{type(exc).__name__}: {exc}", kind="bad"))
        body = f"<pre>{html.escape(text)}</pre>" if head is None else self._table_html(head)
        return _html.card(self._title(), body)

    def _table_html(self, head: pd.DataFrame) -> str:
        """The rows of the preview as an HTML table."""
        return head.to_html(max_cols=12)
