"""Histogram buckets, percentiles and text, against BCC's own conventions (no root)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest

from bpfnb.decode.histogram import bucket_bounds, histogram_frame, percentiles, text_histogram


def log2_slot(value: int) -> int:
    """What ``bpf_log2l`` returns in BCC: 0 for 0, else floor(log2(v)) + 1."""
    return 0 if value == 0 else value.bit_length()


def test_log2_bounds_hold_the_values_bpf_log2l_puts_there():
    values = [0, 1, 2, 3, 4, 7, 8, 1000, 2**63, 2**64 - 1]
    slots = np.array([log2_slot(v) for v in values])
    lo, hi = bucket_bounds(slots)
    for value, low, high in zip(values, lo.tolist(), hi.tolist()):
        assert low <= value <= high
    assert bucket_bounds(np.array([64]))[1].tolist() == [2**64 - 1]


def test_linear_bounds():
    lo, hi = bucket_bounds(np.array([0, 1, 5]), buckets="linear", step=10)
    assert lo.tolist() == [0, 10, 50] and hi.tolist() == [9, 19, 59]
    with pytest.raises(ValueError, match="buckets"):
        bucket_bounds(np.array([1]), buckets="cubic")


def test_histogram_frame_keeps_other_key_fields_and_sorts():
    frame = pd.DataFrame({"comm": ["b", "a", "a"], "slot": [3, 4, 3], "value": [5, 6, 7]})
    hist = histogram_frame(frame, slot="slot", count="value")
    assert list(hist.columns) == ["comm", "slot", "lo", "hi", "count"]
    assert hist[["comm", "slot", "lo", "hi", "count"]].values.tolist() == [
        ["a", 3, 4, 7, 7],
        ["a", 4, 8, 15, 6],
        ["b", 3, 4, 7, 5],
    ]


def test_percentiles_interpolate_within_their_bucket():
    hist = histogram_frame(pd.DataFrame({"key": [3, 4], "value": [50, 50]}), slot="key", count="value")
    result = percentiles(hist, q=[50, 75, 100])
    assert result[["q", "value", "lo", "hi", "total"]].values.tolist() == [
        [50, 7.0, 4, 7, 100],
        [75, 11.5, 8, 15, 100],
        [100, 15.0, 8, 15, 100],
    ]


def test_percentiles_bound_the_true_value_of_a_known_sample():
    rng = np.random.default_rng(7)
    sample = rng.lognormal(mean=8, sigma=1.5, size=20_000).astype(np.int64)
    slots = np.array([log2_slot(int(v)) for v in sample])
    counts = np.bincount(slots, minlength=64)
    hist = histogram_frame(pd.DataFrame({"key": np.arange(64), "value": counts}), slot="key", count="value")
    for row in percentiles(hist, q=[50, 90, 99]).itertuples():
        true = np.percentile(sample, row.q, method="inverted_cdf")
        assert row.lo <= true <= row.hi
        assert row.lo <= row.value <= row.hi


def test_percentiles_per_group_and_empty():
    frame = pd.DataFrame({"comm": ["a", "b"], "slot": [1, 2], "value": [4, 0]})
    result = percentiles(histogram_frame(frame, slot="slot", count="value"), q=[50])
    assert result["comm"].tolist() == ["a", "b"]
    assert result["value"].tolist()[0] == 1.0 and np.isnan(result["value"].tolist()[1])
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentiles(histogram_frame(frame, slot="slot", count="value"), q=[101])


@pytest.mark.parametrize("top", [9, 40])
def test_text_is_line_for_line_what_bcc_prints(top):
    table = pytest.importorskip("bcc.table")
    vals = [0] * 64
    vals[1], vals[3], vals[4], vals[top] = 3, 10, 7, 1
    frame = pd.DataFrame({"key": np.arange(64), "value": np.array(vals, np.uint64)})
    for buckets, printer in (("log2", table._print_log2_hist), ("linear", table._print_linear_hist)):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            printer(vals, "value", None)
        hist = histogram_frame(frame, slot="key", count="value", buckets=buckets)
        assert text_histogram(hist, max_lines=100) == printed.getvalue().rstrip("\n")


def test_text_heads_each_group_and_caps_long_histograms():
    frame = pd.DataFrame({"comm": ["a"] * 3, "slot": [0, 1, 2], "value": [1, 1, 1]})
    text = text_histogram(histogram_frame(frame, slot="slot", count="value"), max_lines=2)
    assert text.splitlines()[0] == "comm = a"
    assert text.splitlines()[-1] == "... 1 more buckets"
