"""bpfnb.plot on DataFrames shaped like the maps' and streams' frames."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PatchCollection, QuadMesh
from matplotlib.figure import Figure

from bpfnb import plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def log2_buckets(counts: list[int]) -> pd.DataFrame:
    """BCC's log2 convention: slot s holds 2^(s-1) .. 2^s - 1 (slot 0 holds 0)."""
    slots = np.arange(len(counts))
    lo = np.where(slots == 0, 0, 2 ** np.maximum(slots - 1, 0))
    hi = 2**slots - 1
    return pd.DataFrame({"lo": lo, "hi": hi, "count": counts})


def bar_widths(fig: Figure) -> list[float]:
    """Bar lengths from top to bottom of a horizontal bar plot."""
    patches = sorted(fig.axes[0].patches, key=lambda p: -p.get_y())
    return [p.get_width() for p in patches]


def test_top_keys_ranks_and_sums_rows_with_the_same_key():
    df = pd.DataFrame({"key": [1, 2, 3, 2, 4], "value": [10, 5, 30, 20, 1]})
    top = plot.top_keys(df, top=3)
    assert top["label"].tolist() == ["3", "2", "1"]
    assert top["value"].tolist() == [30, 25, 10]


def test_top_keys_labels_struct_keys_by_joining_their_fields():
    df = pd.DataFrame({"pid": [1, 2], "comm": ["bash", "sshd"], "count": [3, 9], "bytes": [100, 50]})
    top = plot.top_keys(df, key=["pid", "comm"])
    assert top["label"].tolist() == ["2 / sshd", "1 / bash"]
    assert top["value"].tolist() == [9, 3]
    assert plot.top_keys(df, value="bytes", key="comm")["label"].tolist() == ["bash", "sshd"]


def test_top_keys_uses_the_key_columns_a_frame_names():
    df = pd.DataFrame({"pid": [1, 2], "count": [3, 9], "bytes": [100, 50]})
    df.attrs["key_columns"] = ["pid"]
    assert plot.top_keys(df)["label"].tolist() == ["2", "1"]


def test_bar_draws_the_top_keys_largest_first():
    df = pd.DataFrame({"key": np.arange(1000), "value": np.arange(1000) * 3})
    fig = plot.bar(df, top=4, title="counts")
    assert bar_widths(fig) == [2997, 2994, 2991, 2988]
    ticks = sorted(fig.axes[0].get_yticklabels(), key=lambda t: -t.get_position()[1])
    assert [t.get_text() for t in ticks] == ["999", "998", "997", "996"]
    assert fig.axes[0].get_title(loc="left") == "counts"


def test_bar_of_an_empty_map_says_so():
    fig = plot.bar(pd.DataFrame({"key": [], "value": []}))
    assert [t.get_text() for t in fig.axes[0].texts] == ["no rows yet"]


def test_hist_draws_buckets_without_empty_ends():
    fig = plot.hist(log2_buckets([0, 0, 4, 0, 8, 2, 0, 0]), marks=())
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == [4, 0, 8, 2]
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["2-3", "4-7", "8-15", "16-31"]


def test_hist_sums_the_buckets_of_every_other_key():
    df = pd.concat([log2_buckets([0, 1, 2]).assign(comm="a"), log2_buckets([0, 3, 4]).assign(comm="b")])
    fig = plot.hist(df, marks=())
    assert [p.get_height() for p in fig.axes[0].patches] == [4, 6]


def test_hist_marks_percentiles_interpolated_inside_their_bucket():
    # 100 samples: 50 in 8..15, 50 in 16..31. The median is the end of 8..15,
    # p90 is 80% of the way through 16..31.
    fig = plot.hist(log2_buckets([0, 0, 0, 0, 50, 50]), unit="ns")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["p50 ≈ 15 ns", "p90 ≈ 28 ns", "p99 ≈ 30.7 ns"]
    positions = [line.get_xdata()[0] for line in fig.axes[0].lines]
    assert positions == pytest.approx([0.5, 1.3, 1.48])


def test_hist_needs_bucket_columns():
    with pytest.raises(ValueError, match=r"\['lo', 'hi'\]"):
        plot.hist(pd.DataFrame({"key": [1], "count": [2]}))


def test_heatmap_colours_each_bucket_per_time():
    times = pd.to_datetime(["2026-01-01 00:00:00", "2026-01-01 00:00:01", "2026-01-01 00:00:02"])
    rows = []
    for i, t in enumerate(times):
        for frame in (log2_buckets([0, i, 2 * i, 0]),):
            rows.append(frame.assign(time=t).rename(columns={"count": "delta"}))
    fig = plot.heatmap(pd.concat(rows))
    mesh = next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))
    # Rows are the buckets 1..1 and 2..3 (empty ends dropped), columns the times.
    assert mesh.get_array().filled(0).reshape(2, 3).tolist() == [[0, 1, 2], [0, 2, 4]]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1-1", "2-3"]


def test_heatmap_reads_count_when_there_is_no_delta():
    df = log2_buckets([0, 5]).assign(time=1.0)
    mesh = next(c for c in plot.heatmap(df).axes[0].collections if isinstance(c, QuadMesh))
    assert mesh.get_array().filled(0).ravel().tolist() == [5]


def events(times: list[float], comms: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"time": pd.to_datetime(np.array(times) * 1e9), "comm": comms})


def test_rates_counts_events_per_second_per_key_with_empty_bins_as_zero():
    df = pd.DataFrame({"time": [0.1, 0.2, 0.5, 1.1, 1.2, 1.3, 1.4, 3.5], "comm": list("abaaabca")})
    rates = plot.rates(df, by="comm", top=2)
    assert list(rates.columns) == ["a", "b"]
    assert rates.index.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert rates["a"].tolist() == [2.0, 2.0, 0.0, 1.0]
    assert rates["b"].tolist() == [1.0, 1.0, 0.0, 0.0]


def test_rates_leave_out_the_bins_still_filling():
    df = events([0.0, 0.1, 0.2, 0.6, 1.2], ["x"] * 5)
    now = pd.Timestamp(1.1e9)
    assert plot.rates(df, every=0.5, now=now)["all"].tolist() == [6.0, 2.0]
    # A capture that ended long ago keeps every bin.
    assert plot.rates(df, every=0.5)["all"].tolist() == [6.0, 2.0, 2.0]


def test_rates_of_a_history_frame_draw_its_value_column():
    df = pd.DataFrame({"time": [0, 0, 1, 1], "key": ["a", "b", "a", "b"], "rate": [1.0, 5.0, 2.0, 7.0]})
    rates = plot.rates(df, value="rate", top=1)
    assert rates.to_dict("list") == {"b": [5.0, 7.0]}


def test_line_draws_one_line_per_key():
    df = events([0.1, 1.1, 1.2, 2.1, 2.5], ["a", "a", "b", "b", "a"])
    fig = plot.line(df, by="comm")
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert lines == {"a": [1.0, 1.0, 1.0], "b": [0.0, 1.0, 1.0]}


def test_flame_rectangles_merge_common_prefixes():
    folded = pd.Series({"main;foo;bar": 50, "main;foo;baz": 30, "main;qux": 15, "other;x": 5, "main;foo": 10})
    rects = plot.flame_rectangles(folded).sort_values(["depth", "x"])
    assert list(rects.itertuples(index=False, name=None)) == [
        ("main", 0, 0.0, 105.0),
        ("other", 0, 105.0, 5.0),
        ("foo", 1, 0.0, 90.0),
        ("qux", 1, 90.0, 15.0),
        ("x", 1, 105.0, 5.0),
        ("bar", 2, 10.0, 50.0),
        ("baz", 2, 60.0, 30.0),
    ]


def test_flame_weights_each_event_once_without_a_count_column():
    df = pd.DataFrame({"folded": ["a;b", "a;b", "a;c"]})
    fig = plot.flame(df)
    (patches,) = [c for c in fig.axes[0].collections if isinstance(c, PatchCollection)]
    assert len(patches.get_paths()) == 3  # a, b, c
    assert fig.axes[0].get_xlim() == (0.0, 3.0)


def test_flame_needs_a_stack_column():
    with pytest.raises(ValueError, match="stack="):
        plot.flame(pd.DataFrame({"count": [1]}))


def test_table_sorts_by_value_and_keeps_the_top():
    df = pd.DataFrame({"key": [1, 2, 3], "value": [5, 9, 1]})
    assert plot.table(df, top=2)["key"].tolist() == [2, 1]
    assert plot.table(df, sort="key", ascending=True)["key"].tolist() == [1, 2, 3]
    text = pd.DataFrame({"comm": ["b", "a"]})
    assert plot.table(text)["comm"].tolist() == ["b", "a"]


def test_figures_render_as_png_and_stay_out_of_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plot.bar(pd.DataFrame({"key": [1], "value": [2]}))
    assert fig._repr_png_().startswith(PNG_MAGIC)
    assert plot.render_png(fig).startswith(PNG_MAGIC)
    assert plt.get_fignums() == before


def test_drawing_from_many_threads_gives_the_same_images():
    df = log2_buckets([0, 3, 9, 27, 9, 3])
    expected = plot.render_png(plot.hist(df))
    results: list[bytes] = []

    def draw() -> None:
        for _ in range(3):
            results.append(plot.render_png(plot.hist(df)))

    threads = [threading.Thread(target=draw) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 12


def test_heatmap_of_a_history_skips_its_first_snapshot_and_spans_decades_in_log_colour():
    rows = [log2_buckets([0, 0, 0]).assign(time=0.0, delta=np.nan)]
    rows.append(log2_buckets([0, 1, 1000]).assign(time=1.0).rename(columns={"count": "delta"}))
    mesh = next(c for c in plot.heatmap(pd.concat(rows)).axes[0].collections if isinstance(c, QuadMesh))
    assert mesh.get_array().filled(0).ravel().tolist() == [1, 1000]
    assert type(mesh.norm).__name__ == "LogNorm"


def test_with_stacks_names_stack_ids_outermost_first():
    stacks = pd.DataFrame({"stack_id": [1, 2], "folded": ["main;work", "entry;do_syscall_64"]})
    counts = pd.DataFrame({"user": [1, 1, 7], "kernel": [2, -14, 2], "value": [5, 3, 1]})
    named = plot.with_stacks(counts, stacks, stack_id=("user", "kernel"))
    assert named["folded"].tolist() == [
        "main;work;entry;do_syscall_64",
        "main;work;[no stack]",  # -EFAULT: the kernel had no stack to take
        "[lost];entry;do_syscall_64",  # an id the stack map no longer holds
    ]
    fig = plot.flame(counts, stacks=stacks, stack_id=("user", "kernel"))
    assert fig.axes[0].get_xlim() == (0.0, 9.0)
