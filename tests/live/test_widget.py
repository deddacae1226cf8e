"""The Live widget's own behaviour, drawing from a plain Source of DataFrames.

Everything that needs real maps and streams is in tests/privileged/test_live.py.
"""

from __future__ import annotations

import base64
import threading
import time

import pandas as pd
import pytest

from bpfnb import ArgumentError
from bpfnb import live as _live


class Frames:
    """A Source handing out the DataFrames a test puts in it."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.stopped = False
        self.fail: Exception | None = None

    def snapshot(self) -> pd.DataFrame:
        if self.fail is not None:
            raise self.fail
        return self.frame.copy()

    def status(self) -> dict[str, int]:
        return {"rows": len(self.frame), "lost": 3}


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def source() -> Frames:
    return Frames(pd.DataFrame({"key": [1, 2, 3], "value": [10, 30, 20]}))


def test_a_plain_object_with_the_three_members_is_a_source(source):
    assert isinstance(source, _live.Source)
    assert not isinstance(object(), _live.Source)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"kind": "pie"}, "kind must be one of bar, hist"), ({"interval": 0.1}, "at least 0.2 s")],
)
def test_bad_options_are_refused(source, options, message):
    with pytest.raises(ValueError, match=message):
        _live.Live(source, **options)


def test_an_object_without_df_cannot_be_plotted():
    with pytest.raises(ArgumentError, match="not a map, a stream or a Source"):
        _live.live(42)


def test_the_first_frame_is_drawn_before_the_widget_is_shown(source):
    widget = _live.Live(source, kind="bar", interval=5)
    try:
        assert widget.frames == 1
        assert widget.data.to_dict("list") == {"label": ["2", "3", "1"], "value": [30, 20, 10]}
        bundle = widget._repr_mimebundle_()
        assert base64.b64decode(bundle["image/png"]) == widget.png
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert bundle["text/plain"] == "<bpfnb.Live bar: running, every 5 s, 1 frames>"
        assert "rows 3" in widget.children[2].value and "lost 3" in widget.children[2].value
    finally:
        widget.stop()


def test_a_table_shows_the_sorted_rows_as_html(source):
    widget = _live.Live(source, kind="table", interval=5, top=2)
    widget.stop()
    assert widget.data["key"].tolist() == [2, 3]
    html = widget._repr_mimebundle_()["text/html"]
    assert html == widget.children[0].value
    assert "<td>30</td>" in html and "<td>10</td>" not in html


def test_changes_are_drawn_and_an_unchanged_source_is_not_redrawn(source):
    widget = _live.Live(source, kind="bar", interval=0.2)
    try:
        source.frame = pd.DataFrame({"key": [1, 2], "value": [99, 1]})
        wait_for(lambda: widget.frames == 2, "the changed frame")
        assert widget.data["value"].tolist() == [99, 1]
        time.sleep(1.0)  # five intervals of an unchanged source
        assert widget.frames == 2
    finally:
        widget.stop()


def test_a_failing_source_is_reported_in_the_status_and_the_widget_recovers(source):
    widget = _live.Live(source, kind="bar", interval=0.2)
    try:
        source.fail = OSError(5, "the map went away")
        wait_for(lambda: "the map went away" in widget.children[2].value, "the error in the status line")
        assert widget.running
        source.fail = None
        source.frame = pd.DataFrame({"key": [7], "value": [1]})
        wait_for(lambda: widget.data["label"].tolist() == ["7"], "a frame after the error")
        assert "went away" not in widget.children[2].value
    finally:
        widget.stop()


def test_the_widget_stops_with_its_source_and_stop_is_idempotent(source):
    widget = _live.Live(source, kind="bar", interval=0.2)
    assert widget in _live.running()
    source.stopped = True
    wait_for(lambda: not widget.running, "the widget to notice its source stopped")
    widget.stop()
    assert widget not in _live.running()
    assert not [t for t in threading.enumerate() if t.name.startswith("bpfnb-live")]
    assert "its source stopped" in widget.children[2].value
    assert repr(widget).endswith("its source stopped, every 0.2 s, 1 frames>")


def test_pause_and_resume_through_the_toggle_button(source):
    widget = _live.Live(source, kind="bar", interval=0.2)
    try:
        widget.children[1].children[0].value = True  # what a click on Pause does
        assert widget.paused and "paused" in widget.children[2].value
        assert widget.children[1].children[0].description == "Resume"
        frames = widget.frames
        source.frame = pd.DataFrame({"key": [5], "value": [5]})
        time.sleep(0.6)
        assert widget.frames == frames
        widget.resume()
        wait_for(lambda: widget.frames == frames + 1, "a frame after resuming")
    finally:
        widget.stop()


def test_interval_is_checked_when_changed(source):
    widget = _live.Live(source, kind="bar", interval=1)
    widget.stop()
    with pytest.raises(ValueError, match="at least 0.2 s"):
        widget.interval = 0.05
    widget.interval = 0.5
    assert widget.interval == 0.5


class OwnerLike:
    """A program as a live plot sees it, alive and owning its plots."""

    name = "program"
    closed = False

    def own(self, resource: object) -> None:
        pass

    def stats(self) -> pd.DataFrame:
        return pd.DataFrame({"run_time_ns": [], "run_count": []})


class MapLike:
    """The members of a map view that ``live`` looks at."""

    name = "dist"
    histogram = True
    program = OwnerLike()

    def df(self) -> pd.DataFrame:
        return pd.DataFrame({"lo": [1, 2], "hi": [1, 3], "count": [4, 5]})

    def history(self, interval: float):
        raise AssertionError("a histogram's default plot needs no history")


def test_the_default_kind_suits_the_object():
    hist = _live.live(MapLike(), interval=5)
    hist.stop()
    assert (hist.kind, hist.name, hist.data["count"].tolist()) == ("hist", "dist", [4, 5])
    # The plot's own title names the map; the status line gives the percentiles in the buckets' unit.
    assert "p50 ≈ 2.1 · p90 ≈ 2.82" in hist.children[2].value
    plain = MapLike()
    plain.histogram = False
    bar = _live.live(plain, interval=5)
    bar.stop()
    assert bar.kind == "bar"


class Buckets(Frames):
    """A histogram in nanoseconds, as a latency map gives it."""

    def __init__(self) -> None:
        super().__init__(pd.DataFrame({"lo": [1024, 2048], "hi": [2047, 4095], "count": [10, 90]}))


def test_a_histograms_status_line_gives_its_percentiles_in_units():
    widget = _live.Live(Buckets(), kind="hist", interval=5, unit="ns")
    widget.stop()
    assert "p50 ≈ 2.96 µs · p90 ≈ 3.87 µs · p99 ≈ 4.07 µs" in widget.children[2].value


def test_a_plot_no_one_can_see_draws_nothing_until_someone_can(source):
    widget = _live.Live(source, kind="bar", interval=0.2)
    try:
        watch = widget._visibility
        assert widget.seen and not watch.reported  # headless: no view has reported, so it draws
        watch.report("view-1", seen=False)
        assert not widget.seen
        frames = widget.frames
        source.frame = pd.DataFrame({"key": [8], "value": [8]})
        time.sleep(0.8)
        assert widget.frames == frames, "a hidden plot drew"
        watch.report("view-1", seen=True)  # scrolled back into view: it draws at once
        wait_for(lambda: widget.frames == frames + 1, "a frame once seen")
        watch.report("view-2", seen=True)
        watch.report("view-1", seen=False, gone=True)
        assert widget.seen
        watch.report("view-2", seen=False, gone=True)  # the last view closed
        assert not widget.seen
    finally:
        widget.stop()


def test_a_view_that_falls_silent_counts_as_gone_but_not_while_a_cell_runs(monkeypatch):
    from bpfnb.live import visibility

    class Events:
        def __init__(self) -> None:
            self.callbacks: dict[str, list] = {}

        def register(self, name: str, callback) -> None:
            self.callbacks.setdefault(name, []).append(callback)

    shell = type("Shell", (), {"events": Events()})()
    watch = visibility.Visibility(shell, on_seen=lambda: None)
    watch.report("v", seen=True)
    assert watch.seen
    monkeypatch.setattr(visibility, "SILENCE", 0.0)  # its page closed without a word
    time.sleep(0.01)
    assert not watch.seen
    shell.events.callbacks["pre_run_cell"][0]()  # a cell runs: the front end cannot be heard, its word stands
    assert watch.seen
    shell.events.callbacks["post_run_cell"][0]()
    assert not watch.seen
