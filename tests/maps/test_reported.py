"""Views on maps an engine reports as frames: bpftrace's, from printed JSON fed by hand (pure)."""

from __future__ import annotations

import time

import pytest

import bpfnb
from bpfnb.engines.bpftrace.output import OutputState
from bpfnb.engines.bpftrace.program import BpftraceMap
from bpfnb.engines.bpftrace.script import find_maps
from bpfnb.maps.registry import map_view
from bpfnb.maps.reported import ReportedMapView

SCRIPT = "k { @calls[comm] = count(); @usecs = hist(arg0); @st[pid] = stats(arg1); }"
MAPS = find_maps(SCRIPT)


class Owner:
    name = "sys"
    closed = False

    def __init__(self) -> None:
        self.resources: list[object] = []

    def own(self, resource: object) -> None:
        self.resources.append(resource)


def view(name: str, output: OutputState, period: float | None = 0.05) -> ReportedMapView:
    found = map_view(Owner(), BpftraceMap(MAPS[name], output, period))
    assert isinstance(found, ReportedMapView)
    return found


def printed(output: OutputState, *records: str) -> None:
    for record in records:
        output.feed(record + "\n")
    output.feed('{"type": "printf", "data": "MARK\\n"}\n')


def test_a_count_map_as_its_last_report() -> None:
    output = OutputState("MARK", tuple(MAPS))
    calls = view("@calls", output)
    assert calls.df().empty and list(calls.df().columns) == ["comm", "count"] and calls.df().attrs["time"] is None
    printed(output, '{"type": "map", "data": {"@calls": {"sh": 3, "python": 10}}}')
    df = calls.df()
    assert df.to_dict("list") == {"comm": ["python", "sh"], "count": [10, 3]} and df.attrs["time"] is not None
    df.loc[0, "count"] = 0
    assert calls.df()["count"].tolist() == [10, 3]  # each frame is the caller's own
    assert len(calls) == 2 and (calls.map_type, calls.key_type, calls.value_type) == ("count", "comm", "count")
    assert "map @calls: count comm -> count, reported" in repr(calls) and "<table" in calls._repr_html_()
    assert not calls.histogram


def test_a_hist_map_is_a_bucket_frame_for_percentiles_and_plots() -> None:
    output = OutputState("MARK", tuple(MAPS))
    usecs = view("@usecs", output)
    buckets = ", ".join(f'{{"min": {1 << i}, "max": {(2 << i) - 1}, "count": {c}}}' for i, c in [(1, 5), (2, 90), (3, 5)])
    printed(output, f'{{"type": "hist", "data": {{"@usecs": [{buckets}]}}}}')
    df = usecs.df()
    assert list(df.columns) == ["slot", "lo", "hi", "count"] and usecs.histogram
    assert bpfnb.percentiles(df, [50])[["lo", "hi"]].iloc[0].tolist() == [4, 7]
    assert bpfnb.plot.hist(df) is not None


def test_stats_columns() -> None:
    output = OutputState("MARK", tuple(MAPS))
    printed(output, '{"type": "stats", "data": {"@st": {"7": {"count": 2, "average": 3, "total": 6}}}}')
    assert view("@st", output).df().to_dict("list") == {"pid": [7], "count": [2], "average": [3], "total": [6]}


def test_wait_for_the_next_report() -> None:
    output = OutputState("MARK", tuple(MAPS))
    calls = view("@calls", output, period=0.01)
    started = time.monotonic()
    assert calls.wait(seconds=0.05) is calls  # nothing came: it gives up
    assert time.monotonic() - started >= 0.04
    with pytest.raises(bpfnb.ArgumentError, match="only when its program ends"):
        view("@calls", output, period=None).wait()


def test_history_records_reports_with_their_rates() -> None:
    output = OutputState("MARK", tuple(MAPS))
    calls = view("@calls", output)
    printed(output, '{"type": "map", "data": {"@calls": {"sh": 3}}}')
    history = calls.history()
    assert history.interval == 0.05 and history in calls.program.resources
    history.stop()
    printed(output, '{"type": "map", "data": {"@calls": {"sh": 5}}}')
    history.record()
    latest = history.snapshot()
    assert latest is not None and latest[["comm", "count", "delta"]].iloc[0].tolist() == ["sh", 5, 2.0]


def test_history_pairs_rows_by_their_string_keys_whatever_their_order() -> None:
    output = OutputState("MARK", tuple(MAPS))
    calls = view("@calls", output)
    history = calls.history()
    history.stop()
    printed(output, '{"type": "map", "data": {"@calls": {"sh": 10, "python": 5}}}')
    history.record()
    # Frames come largest first: python now leads, with 5 more calls; sh got none.
    printed(output, '{"type": "map", "data": {"@calls": {"sh": 10, "python": 15}}}')
    latest = history.record()
    assert latest.set_index("comm")["delta"].to_dict() == {"python": 10.0, "sh": 0.0}
