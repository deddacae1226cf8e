"""bpfnb.plot on DataFrames shaped like the maps' and streams' frames."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
import time
from pathlib import Path

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
    df = pd.DataFrame({"slot": [1, 2], "count": [3, 9], "bytes": [100, 50]})
    df.attrs["key_columns"] = ["slot"]
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


def tick_texts(axis) -> list[str]:
    """The tick labels a person sees on ``axis`` once the figure is drawn."""
    axis.figure.canvas.draw()
    low, high = sorted(axis.get_view_interval())
    return [t.get_text() for t in axis.get_ticklabels() if low <= t.get_position()[0 if axis.axis_name == "x" else 1] <= high]


def bars_of(ax) -> list[tuple[float, float, float]]:
    """(start, end, height) of each bar, left to right."""
    return sorted((p.get_x(), p.get_x() + p.get_width(), p.get_height()) for p in ax.patches)


def test_hist_draws_log2_buckets_on_a_log_axis_with_gaps_for_empty_buckets():
    fig = plot.hist(log2_buckets([0, 0, 4, 0, 8, 2, 0, 0]), marks=())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    # 2..3, then 8..15 and 16..31: the empty 4..7 is a gap, not a bar of 0.
    assert bars_of(ax) == [(2, 4, 4), (8, 16, 8), (16, 32, 2)]
    assert ax.get_xlim() == pytest.approx((2 / 1.12, 32 * 1.12))


def test_a_nanosecond_histogram_reads_in_microseconds_and_milliseconds():
    counts = [0] * 30
    counts[8], counts[9], counts[11], counts[24] = 400, 100, 30, 2  # 128 ns .. 16.8 ms
    fig = plot.hist(log2_buckets(counts), unit="ns")
    ax = fig.axes[0]
    assert tick_texts(ax.xaxis) == ["1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["p50 ≈ 212 ns", "p90 ≈ 457 ns", "p99 ≈ 1.93 µs"]
    assert tick_texts(ax.yaxis)[-1] == "400"
    assert ax.get_title(loc="right") == "n=532"
    # Nothing runs on past the last bucket (16.8 ms): no 8.59G.
    assert ax.get_xlim()[1] == pytest.approx(2**24 * 1.12)


def test_a_histogram_map_named_for_latency_is_in_nanoseconds():
    df = log2_buckets([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5])
    df.attrs["name"] = "syscall_latency"
    fig = plot.hist(df, marks=(50,))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["p50 ≈ 2.05 µs"]
    assert fig.axes[0].get_title(loc="left") == "syscall_latency"


def test_hist_draws_linear_buckets_on_a_linear_axis_in_one_unit():
    slots = np.bincount([1] * 200 + [12] * 20 + [13] * 3, minlength=51)
    df = pd.DataFrame({"lo": np.arange(51) * 1_000_000, "hi": np.arange(51) * 1_000_000 + 999_999, "count": slots})
    fig = plot.hist(df, unit="ns", marks=(50, 99))
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert bars_of(ax) == [(1e6, 2e6, 200), (12e6, 13e6, 20), (13e6, 14e6, 3)]
    assert tick_texts(ax.xaxis) == ["2 ms", "4 ms", "6 ms", "8 ms", "10 ms", "12 ms", "14 ms"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["p50 ≈ 1.56 ms", "p99 ≈ 13.3 ms"]


def test_sizes_read_in_binary_units():
    counts = [0] * 22
    counts[10], counts[13], counts[21] = 5, 9, 1  # 512 B .. 1 MiB
    fig = plot.hist(log2_buckets(counts), unit="bytes", marks=(50,))
    assert tick_texts(fig.axes[0].xaxis) == ["1 KiB", "4 KiB", "16 KiB", "64 KiB", "256 KiB", "1 MiB"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["p50 ≈ 5.11 KiB"]


def test_hist_sums_the_buckets_of_every_other_key():
    df = pd.concat([log2_buckets([0, 1, 2]).assign(comm="a"), log2_buckets([0, 3, 4]).assign(comm="b")])
    fig = plot.hist(df, marks=())
    assert [height for _, _, height in bars_of(fig.axes[0])] == [4, 6]


def test_hist_marks_percentiles_interpolated_inside_their_bucket():
    # 100 samples: 50 in 8..15, 50 in 16..31. The median is the end of 8..15,
    # p90 is 80% of the way through 16..31.
    fig = plot.hist(log2_buckets([0, 0, 0, 0, 50, 50]), unit="ns")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["p50 ≈ 15 ns", "p90 ≈ 28 ns", "p99 ≈ 30.7 ns"]
    positions = [line.get_xdata()[0] for line in fig.axes[0].lines]
    assert positions == pytest.approx([15, 28, 30.7])


def test_hist_needs_bucket_columns():
    with pytest.raises(ValueError, match=r"\['lo', 'hi'\]"):
        plot.hist(pd.DataFrame({"key": [1], "count": [2]}))


def heatmap_frame(steps: list[list[int]], *, every: float = 0.25) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01 03:18:36.75", tz="UTC")
    rows = [
        log2_buckets(counts).assign(time=start + pd.Timedelta(seconds=every * i)).rename(columns={"count": "delta"})
        for i, counts in enumerate(steps)
    ]
    return pd.concat(rows, ignore_index=True)


def mesh_of(fig: Figure) -> QuadMesh:
    return next(c for c in fig.axes[0].collections if isinstance(c, QuadMesh))


def test_heatmap_colours_each_bucket_per_time():
    fig = plot.heatmap(heatmap_frame([[0, i, 2 * i, 0] for i in range(3)]))
    # Rows are the buckets 1..1 and 2..3 (empty ends dropped), columns the times.
    assert mesh_of(fig).get_array().filled(0).reshape(2, 3).tolist() == [[0, 1, 2], [0, 2, 4]]
    assert fig.axes[0].get_yscale() == "log"


def test_heatmap_axes_have_units_round_times_and_a_colour_bar_that_says_what_it_counts():
    counts = [[0] * 30 for _ in range(12)]
    for i, row in enumerate(counts):
        row[21 + (i // 3)] = 40 // (1 + i // 3)  # 1-2 ms, then 2-4, 4-8, 8-16 ms
    counts[5][28] = 1  # one outlier at 134-268 ms, far above, with empty buckets between
    df = heatmap_frame(counts)
    df.attrs["name"] = "dist"
    fig = plot.heatmap(df, unit="ns")
    ax, bar = fig.axes
    assert tick_texts(ax.yaxis) == ["2 ms", "5 ms", "10 ms", "20 ms", "50 ms", "100 ms", "200 ms"]
    times = tick_texts(ax.xaxis)
    assert times == ["03:18:36.5", "03:18:37.0", "03:18:37.5", "03:18:38.0", "03:18:38.5", "03:18:39.0", "03:18:39.5"]
    assert ax.get_xlabel() == "time (2026-01-01 UTC)"
    assert bar.get_ylabel() == "events per 250 ms"
    # The empty buckets between 16.8 ms and the outlier's are drawn empty.
    rows = mesh_of(fig).get_array().reshape(-1, 12)
    assert rows.shape[0] == 8 and rows[4:7].mask.all()
    # A hash map holds no rows for them at all: one empty row spans the gap, the scale stays true.
    sparse = df[~df["lo"].isin([2**24, 2**25, 2**26])]
    gapped = plot.heatmap(sparse, unit="ns")
    assert mesh_of(gapped).get_array().reshape(-1, 12).shape[0] == 6
    assert tick_texts(gapped.axes[0].yaxis) == tick_texts(ax.yaxis)


def test_heatmap_time_ticks_never_repeat():
    for every in (0.2, 1.0, 7.0, 60.0):
        df = heatmap_frame([[0, 1, 2]] * 40, every=every)
        times = tick_texts(plot.heatmap(df).axes[0].xaxis)
        assert len(times) >= 2 and len(set(times)) == len(times), (every, times)
        assert len({len(t) for t in times}) == 1, (every, times)  # one format


def test_heatmap_reads_count_when_there_is_no_delta():
    df = log2_buckets([0, 5]).assign(time=1.0)
    fig = plot.heatmap(df)
    assert mesh_of(fig).get_array().filled(0).ravel().tolist() == [5]
    assert fig.axes[1].get_ylabel() == "events (total so far)"


def test_a_click_on_a_heatmap_cell_names_its_rows():
    df = heatmap_frame([[0, 0, 3, 0], [0, 1, 0, 2]]).assign(pid=7)
    fig = plot.heatmap(df)
    fig.picture()  # drawn, as the notebook shows it
    ax = fig.axes[0]
    # The middle of the second column's 4..7 bucket, as a fraction of the picture from its top-left.
    x_edges = fig._layout.x_edges
    to_figure = ax.transData + fig.transFigure.inverted()
    fx, fy = to_figure.transform(((x_edges[1] + x_edges[2]) / 2, 5.5))
    cell = fig.cell_at(fx, 1 - fy)
    assert (cell.lo, cell.hi, cell.rows["delta"].tolist(), cell.rows["pid"].tolist()) == (4, 7, [2], [7])
    left, top, right, bottom = cell.box
    assert left < fx < right and top < 1 - fy < bottom
    assert "03:18:37.000, 4 to 8: delta 2 in 1 rows" in fig.cell_html(cell)
    assert fig.cell_at(0.01, 0.01) is None  # the margin


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


def test_the_bin_that_just_ended_waits_for_its_last_events():
    # Just after a whole second, the second that ended may still have events on their way from the kernel.
    deadline = time.monotonic() + 2
    while not 0.05 <= pd.Timestamp.now().timestamp() % 1 <= 0.12:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    second = pd.Timestamp.now().floor("s")
    df = pd.DataFrame({"time": [second - pd.Timedelta(seconds=s) for s in (1.5, 0.5)]})
    assert plot.rates(df).index.tolist() == [second - pd.Timedelta(seconds=2)]


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


def test_line_time_ticks_keep_one_format_across_a_minute():
    # Events from 03:16:58 to 03:17:01.5: matplotlib's concise labels read "58.0 ... 59.5, 03:17, 00.5".
    df = events(list(np.arange(0, 3.5, 0.05) + 11818.0), ["x"] * 70)  # 1970-01-01 03:16:58 UTC on
    ax = plot.line(df, every=0.5).axes[0]
    times = tick_texts(ax.xaxis)
    assert times == ["03:16:58", "03:16:59", "03:17:00", "03:17:01"]
    assert tick_texts(ax.yaxis)[-1] == "20"


def test_line_of_long_spans_drops_the_seconds_and_never_repeats():
    for seconds, expected in ((3600, "03:30"), (20, "03:11:00"), (2, "03:10:58.5")):
        start = pd.Timestamp("2026-01-01 03:10:58", tz="UTC")
        times = pd.date_range(start, start + pd.Timedelta(seconds=seconds), periods=50)
        df = pd.DataFrame({"time": times, "rate": 1.0, "key": 1})
        labels = tick_texts(plot.line(df, value="rate").axes[0].xaxis)
        assert expected in labels and len(set(labels)) == len(labels), labels
        assert len({len(t) for t in labels}) == 1, labels


def test_bars_keyed_by_pid_show_process_names(monkeypatch):
    from bpfnb.kernel import processes

    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        own = Path("/proc/self/comm").read_text().strip()
        df = pd.DataFrame({"pid": [os.getpid(), sleeper.pid, 4_000_000], "value": [30, 20, 10]})
        df.attrs["name"] = "calls"
        fig = plot.bar(df)
        labels = sorted(fig.axes[0].get_yticklabels(), key=lambda t: -t.get_position()[1])
        assert [t.get_text() for t in labels] == [f"{os.getpid()} ({own})", f"{sleeper.pid} (sleep)", "4000000"]
        assert fig.axes[0].get_title(loc="left") == "calls: count per pid"
        assert fig.axes[0].get_xlabel() == "count"
    finally:
        sleeper.kill()
        sleeper.wait()
    # Gone now, and read again: the name seen while it ran stays.
    monkeypatch.setattr(processes, "FRESH_FOR", 0.0)
    assert plot.top_keys(df)["label"].tolist()[1] == f"{sleeper.pid} (sleep)"


def test_a_plain_key_of_a_map_named_for_pids_is_a_pid_and_a_comm_column_wins():
    df = pd.DataFrame({"key": [os.getpid()], "value": [1]})
    df.attrs["name"] = "bytes_by_pid"
    assert plot.top_keys(df)["label"].tolist() == [f"{os.getpid()} ({Path('/proc/self/comm').read_text().strip()})"]
    with_comm = pd.DataFrame({"pid": [os.getpid()], "comm": ["mine"], "value": [1]})
    assert plot.top_keys(with_comm)["label"].tolist() == [f"{os.getpid()} / mine"]


def test_decoded_columns_are_labelled_by_name_not_by_their_raw_number():
    df = pd.DataFrame({"errno": ["ENOENT", "EACCES"], "errno_raw": [2, 13], "value": [9, 3]})
    assert plot.top_keys(df)["label"].tolist() == ["ENOENT", "EACCES"]


def test_bars_of_sizes_and_durations_read_in_their_units():
    df = pd.DataFrame({"comm": ["a", "b"], "read_bytes": [3 * 1024**2, 512]})
    fig = plot.bar(df, value="read_bytes")
    assert [t.get_text() for t in fig.axes[0].texts] == [" 3 MiB", " 512 B"]
    assert tick_texts(fig.axes[0].xaxis)[-1] == "3 MiB"
    assert fig.axes[0].get_title(loc="left") == "read_bytes per comm"


def test_tables_write_quantities_in_units_and_leave_ids_alone():
    df = pd.DataFrame({"pid": [1_234_567], "lat_ns": [24_200], "value": [1_234_567], "slot": [12]})
    df.attrs["name"] = "counts"
    shown = plot.readable(df).iloc[0].to_dict()
    assert shown == {"pid": "1234567", "lat_ns": "24.2 µs", "value": "1,234,567", "slot": 12}
    assert "<td>24.2 µs</td>" in plot.table_html(df)


def test_figures_show_as_svg_with_their_text_and_a_png():
    fig = plot.hist(log2_buckets([0] * 20 + [5, 9]), unit="ns")
    bundle = fig._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", bundle["image/svg+xml"])
    assert {"p50 ≈ 1.28 ms", "1 ms", "n=14"} <= set(texts)


def test_flame_tree_and_speedscope_carry_the_same_stacks(tmp_path):
    folded = pd.Series({"main;foo;bar": 50, "main;foo": 10, "other;x": 5})
    fig = plot.flame(folded.rename_axis("stack").reset_index(name="count"), title="spin")
    assert fig.tree() == {
        "n": "all", "v": 65.0, "c": [
            {"n": "main", "v": 60.0, "c": [{"n": "foo", "v": 60.0, "c": [{"n": "bar", "v": 50.0}]}]},
            {"n": "other", "v": 5.0, "c": [{"n": "x", "v": 5.0}]},
        ],
    }
    content = fig.speedscope(tmp_path / "spin.speedscope.json")
    assert json.loads((tmp_path / "spin.speedscope.json").read_text()) == content
    frames = [f["name"] for f in content["shared"]["frames"]]
    (profile,) = content["profiles"]
    stacks = [";".join(frames[i] for i in sample) for sample in profile["samples"]]
    assert dict(zip(stacks, profile["weights"])) == {"main;foo;bar": 50, "main;foo": 10, "other;x": 5}
    assert (profile["type"], profile["endValue"], content["name"]) == ("sampled", 65, "spin")
    assert set(fig.colours()) == {"main", "foo", "bar", "other", "x"}


def test_interactive_views_come_with_the_picture():
    fig = plot.flame(pd.DataFrame({"folded": ["a;b", "a;c"]}))
    bundle = fig._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == fig._view.model_id and fig._view._tree["v"] == 2.0
    assert "image/png" in bundle and "image/svg+xml" in bundle
    heat = plot.heatmap(heatmap_frame([[0, 1, 2], [0, 3, 0]]))
    bundle = heat._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == heat._view.model_id
    # What a click on the front end sends: the middle of the picture holds no cell here, the cell below does.
    assert not heat._view.select(0.02, 0.02) and heat._view._box == []
    assert heat._view.select(*_middle_of_cell(heat, column=1, bucket_lo=1))
    assert "delta 3 in 1 rows" in heat._view._rows and len(heat._view._box) == 4
    empty = plot.heatmap(heatmap_frame([[0, 0]]))
    assert "application/vnd.jupyter.widget-view+json" not in empty._repr_mimebundle_()


def _middle_of_cell(fig, *, column: int, bucket_lo: float) -> tuple[float, float]:
    """The picture fractions (from its top-left) of the middle of one heatmap cell."""
    ax, layout = fig.axes[0], fig._layout
    y_low = bucket_lo
    y_high = bucket_lo * 2
    to_figure = ax.transData + fig.transFigure.inverted()
    fx, fy = to_figure.transform(((layout.x_edges[column] + layout.x_edges[column + 1]) / 2, (y_low * y_high) ** 0.5))
    return float(fx), float(1 - fy)


def test_times_in_plain_seconds_read_as_durations():
    df = pd.DataFrame({"time": [0.1, 0.2, 0.5, 1.1, 1.2, 1.3, 1.4, 3.5], "comm": list("abaaabca")})
    assert tick_texts(plot.line(df, by="comm").axes[0].xaxis) == ["0", "1 s", "2 s", "3 s"]
