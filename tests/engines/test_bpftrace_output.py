"""bpftrace's JSON lines folded into map snapshots and printed lines (pure)."""

from __future__ import annotations

import threading

from bpfnb.engines.bpftrace.lines import LineLog
from bpfnb.engines.bpftrace.output import OutputState

T0 = 1_700_000_000_000_000_000


def feed(state: OutputState, *lines: str, t: int = T0) -> None:
    for line in lines:
        state.feed(line + "\n", t)


def texts(log: LineLog, start: int = 0) -> list[str]:
    return [text for _, text in log.lines(start)[0]]


def test_printed_lines_are_reassembled() -> None:
    state = OutputState("MARK", ())
    feed(
        state,
        '{"type": "printf", "data": "line1 a=1\\nline2 b=2\\n"}',
        '{"type": "printf", "data": "nonl "}',
        '{"type": "printf", "data": "x=a, b\\"c\\\\d\\n"}',
    )
    assert texts(state.text) == ["line1 a=1", "line2 b=2", 'nonl x=a, b"c\\d']
    assert state.text.lines()[1:] == (0, 3) and state.text.received == 3


def test_lines_are_bounded_and_indexed_from_the_start() -> None:
    log = LineLog(max_lines=2)
    for i in range(5):
        log.add(f"i={i}\n", T0)
    lines, first, end = log.lines(1)
    assert [t for _, t in lines] == ["i=3", "i=4"] and (first, end) == (3, 5)
    assert log.dropped == 3 and log.received == 5


def test_an_unfinished_last_line_counts_once_output_ends() -> None:
    log = LineLog()
    log.add("no newline", T0)
    assert texts(log) == [] and log.running
    log.close()
    assert texts(log) == ["no newline"] and not log.running


def test_lost_events_attached_probes_and_what_is_not_json() -> None:
    state = OutputState("MARK", ())
    feed(
        state,
        '{"type": "attached_probes", "data": {"probes": 3}}',
        '{"type": "lost_events", "data": {"events": 8716}}',
        '{"type": "lost_events", "data": {"events": 17805}}',
        "not json",
    )
    assert state.attached == 3 and state.text.lost == 8716 + 17805 and texts(state.text) == []


def test_a_map_missing_from_a_round_is_empty() -> None:
    state = OutputState("MARK", ("@c", "@h"))
    feed(
        state,
        '{"type": "map", "data": {"@c": {"x": 5}}}',
        '{"type": "hist", "data": {"@h": [{"min": 2, "max": 3, "count": 5}]}}',
        '{"type": "printf", "data": "MARK\\n"}',
    )
    c = state.map("@c")
    assert c is not None and c.data == {"x": 5}
    # clear(@c): bpftrace prints nothing for it in the next round.
    feed(state, '{"type": "hist", "data": {"@h": []}}', '{"type": "printf", "data": "MARK\\n"}', t=T0 + 10**9)
    c, h = state.map("@c"), state.map("@h")
    assert c is not None and c.data is None and c.time == T0 / 1e9 + 1
    assert h is not None and h.data == [] and h.kind == "hist"
    assert texts(state.text) == []  # the marker is not the script's output


def test_the_exit_dump_is_final_and_empties_what_it_leaves_out() -> None:
    state = OutputState("MARK", ("@c", "@d"))
    feed(state, '{"type": "map", "data": {"@c": {"x": 5}}}', '{"type": "map", "data": {"@d": 1}}')
    feed(state, "", "", '{"type": "map", "data": {"@c": {"x": 6}}}')
    state.finish(clean_exit=True)
    c, d = state.map("@c"), state.map("@d")
    assert c is not None and c.data == {"x": 6} and c.final
    assert d is not None and d.data is None


def test_a_killed_bpftrace_leaves_its_last_snapshot() -> None:
    state = OutputState("MARK", ("@c",))
    feed(state, '{"type": "map", "data": {"@c": {"x": 5}}}', "")
    state.finish(clean_exit=False)
    c = state.map("@c")
    assert c is not None and c.data == {"x": 5} and not c.final


def test_other_records_that_print_text() -> None:
    state = OutputState("MARK", ())
    feed(
        state,
        '{"type": "time", "data": "04:28:47\\n"}',
        '{"type": "syscall", "data": "hi\\n"}',
        '{"type": "value", "data": "str"}',
        '{"type": "value", "data": [1,"a"]}',
    )
    assert texts(state.text) == ["04:28:47", "hi", "str", '[1, "a"]']


def test_waiting_for_a_newer_snapshot() -> None:
    state = OutputState("MARK", ("@c",))
    assert not state.wait_newer("@c", 0.0, 0.01)
    timer = threading.Timer(0.05, feed, (state, '{"type": "printf", "data": "MARK\\n"}'))
    timer.start()
    assert state.wait_newer("@c", T0 / 1e9 - 1, 5)
    timer.join()


def test_waiting_for_lines_and_their_rate() -> None:
    log = LineLog()
    timer = threading.Timer(0.05, log.add, ("a\nb\n",))
    timer.start()
    log.wait(2, 5)
    timer.join()
    assert log.received == 2 and log.rate() > 0
