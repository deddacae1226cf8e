"""Units a person reads, and where bpfnb takes a column's unit from."""

from __future__ import annotations

import pandas as pd
import pytest

from bpfnb import ArgumentError
from bpfnb.plot.units import COUNT, NANOSECONDS, Unit, known_unit, parse_unit, unit_for


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (850, "850 ns"),
        (1_024, "1.02 µs"),
        (24_200, "24.2 µs"),
        (253_400, "253 µs"),
        (999_700, "1 ms"),  # not "1000 µs"
        (1_500_000, "1.5 ms"),
        (16_777_215, "16.8 ms"),
        (2_310_000_000, "2.31 s"),
        (90e9, "1.5 min"),
        (-2_000, "-2 µs"),
    ],
)
def test_nanoseconds_read_in_the_unit_that_suits_each_value(value, text):
    assert NANOSECONDS.text(value) == text


def test_other_durations_sizes_and_counts():
    assert parse_unit("us").text(1500) == "1.5 ms"
    assert parse_unit("µs").text(3) == "3 µs"
    assert parse_unit("ms").text(0.25) == "250 µs"
    assert parse_unit("s").text(0.5) == "500 ms"
    assert parse_unit("bytes").text(512) == "512 B"
    assert parse_unit("B").text(1536) == "1.5 KiB"
    assert parse_unit("bytes").text(3 * 1024**2) == "3 MiB"
    assert parse_unit("KiB").text(2048) == "2 MiB"
    assert COUNT.text(1_234_567) == "1,234,567"
    assert COUNT.text(70.8) == "70.8"
    assert COUNT.text(142.6) == "143"
    assert COUNT.text(2.5e9) == "2.5 billion"


def test_texts_of_an_axis_share_one_sub_unit():
    assert NANOSECONDS.texts([0, 5e6, 10e6, 15e6]) == ["0", "5 ms", "10 ms", "15 ms"]
    assert NANOSECONDS.texts([0, 250_000, 500_000, 750_000, 1_000_000]) == [
        "0", "0.25 ms", "0.5 ms", "0.75 ms", "1 ms"
    ]
    assert Unit("size").texts([0, 4096, 8192]) == ["0", "4 KiB", "8 KiB"]


def test_unknown_unit_names_are_refused_with_the_choices():
    with pytest.raises(ArgumentError, match="unknown unit 'parsecs'") as caught:
        parse_unit("parsecs")
    assert "ns, us, ms, s" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("column", "names", "expected"),
    [
        ("lat_ns", (), NANOSECONDS),
        ("delta_us", (), Unit("duration", 1e-6)),
        ("usecs", (), Unit("duration", 1e-6)),
        ("wait_ms", (), Unit("duration", 1e-3)),
        ("lat", (), NANOSECONDS),
        ("delta", (), NANOSECONDS),
        ("value.duration", (), NANOSECONDS),
        ("read_bytes", (), Unit("size")),
        ("len", (), Unit("size")),
        ("lo", ("latency",), NANOSECONDS),
        ("value", ("syscall_latency",), NANOSECONDS),
        ("value", ("counts",), COUNT),
        ("pid", (), COUNT),
    ],
)
def test_a_columns_unit_comes_from_its_name_then_the_maps(column, names, expected):
    assert unit_for(column, names=names) == expected


def test_a_given_unit_wins_then_the_frames_own():
    units = {"delta": "count", "rate": "count/s"}
    assert unit_for("delta", units=units) == COUNT
    assert unit_for("rate", units=units) == COUNT
    assert unit_for("delta", given="ms", units=units) == Unit("duration", 1e-3)
    assert unit_for("x", given=Unit("size")) == Unit("size")
    assert known_unit("pid") is None and known_unit("stack_id") is None


def test_log_ticks_are_round_values_of_the_unit():
    ns = [NANOSECONDS.text(t) for t in NANOSECONDS.log_ticks(90, 20e6)]
    assert ns == ["100 ns", "1 µs", "10 µs", "100 µs", "1 ms", "10 ms"]
    narrow = [NANOSECONDS.text(t) for t in NANOSECONDS.log_ticks(0.9e6, 2.4e6)]
    assert narrow == ["1 ms", "2 ms"]
    octave = [NANOSECONDS.text(t) for t in NANOSECONDS.log_ticks(3.6e6, 9.6e6)]
    assert octave == ["4 ms", "5 ms", "6 ms", "7 ms", "8 ms", "9 ms"]
    sizes = [Unit("size").text(t) for t in Unit("size").log_ticks(500, 2e6)]
    assert sizes == ["1 KiB", "4 KiB", "16 KiB", "64 KiB", "256 KiB", "1 MiB"]


def test_a_frames_units_travel_in_its_attrs():
    df = pd.DataFrame({"delta": [1.0]})
    df.attrs["units"] = {"delta": "count"}
    assert unit_for("delta", units=df.attrs["units"]) == COUNT
