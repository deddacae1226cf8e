"""Printed lines to a frame with ``key=value`` columns (pure)."""

from __future__ import annotations

import numpy as np

from bpfnb.decode.integers import as_integers
from bpfnb.decode.pairs import text_frame

T0 = 1_700_000_000_000_000_000


def pairs(text: str) -> dict[str, object]:
    """The columns one line gives, and their values."""
    return text_frame([(T0, text)]).iloc[0].drop(["time", "text"]).to_dict()


def test_pairs_of_a_line() -> None:
    assert pairs("exec pid=12 comm=sh") == {"pid": 12, "comm": "sh"}
    assert pairs('open file="a b" (fd=3, ret=-1);') == {"file": "a b", "fd": 3, "ret": -1}
    assert pairs("a==b x=1=2 url=http://h/?q=1") == {"x": "1=2", "url": "http://h/?q=1"}


def test_decimal_text_as_integers() -> None:
    signed, large = as_integers(["1", "-2"]), as_integers(["1", "18446744073709551615"])
    assert signed is not None and signed.dtype == np.int64 and signed.tolist() == [1, -2]
    assert large is not None and large.dtype == np.uint64
    unsure = ([], ["1", "x"], ["-"], ["1-2"], ["-99999999999999999999"], ["1 "], ["-1", "18446744073709551615"])
    assert all(as_integers(texts) is None for texts in unsure)


def test_columns_are_typed_and_missing_values_are_null() -> None:
    df = text_frame([(T0, "exec pid=12 comm=sh"), (T0 + 5, "exec pid=13 comm=ls"), (T0 + 9, "no pairs")])
    assert list(df.columns) == ["time", "text", "pid", "comm"]
    assert str(df["time"].dtype) == "datetime64[ns, UTC]" and df["time"].iloc[1].value == T0 + 5
    assert df["pid"].dtype == "Int64" and df["pid"].tolist()[:2] == [12, 13] and df["pid"].isna().tolist()[2]
    assert df["comm"].tolist()[:2] == ["sh", "ls"]


def test_a_full_integer_column_a_mixed_one_and_reserved_names() -> None:
    df = text_frame([(T0, "fd=1 v=a time=3"), (T0, "fd=2 v=7 time=4")])
    assert df["fd"].dtype == np.int64 and df["v"].tolist() == ["a", "7"] and df["time_"].tolist() == [3, 4]


def test_no_lines() -> None:
    assert list(text_frame([]).columns) == ["time", "text"]
