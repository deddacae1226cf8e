"""A program's printed lines as a stream (pure: an engine's line log filled by hand)."""

from __future__ import annotations

import threading
import time

from bpfnb.engines.bpftrace.lines import LineLog
from bpfnb.streams.text import TextStream


class Owner:
    name = "sys"
    closed = False

    def own(self, resource: object) -> None:
        raise AssertionError("a text stream is a view: nothing to stop when the program goes")


def test_reads_every_line_since_the_program_started() -> None:
    log = LineLog()
    log.add("exec pid=1 comm=sh\n")
    stream = TextStream(Owner(), log)
    log.add("exec pid=2 comm=ls\n")
    df = stream.df()
    assert df["pid"].tolist() == [1, 2] and df["comm"].tolist() == ["sh", "ls"]
    assert len(stream) == stream.received == 2 and stream.running and stream.lost == 0


def test_stop_freezes_it_and_the_end_of_output_stops_it() -> None:
    log = LineLog()
    stream = TextStream(Owner(), log)
    log.add("a=1\n")
    stream.stop()
    stream.stop()
    log.add("a=2\n")
    assert stream.df()["a"].tolist() == [1] and stream.state == "stopped" and stream.rate == 0
    other = TextStream(Owner(), log)
    log.close()
    assert not other.running and other.received == 2


def test_lost_and_dropped_are_counted() -> None:
    log = LineLog(max_lines=2)
    for i in range(3):
        log.add(f"i={i}\n")
    log.add_lost(7)
    stream = TextStream(Owner(), log)
    assert (len(stream), stream.received, stream.dropped, stream.lost) == (2, 3, 1, 7)
    assert stream.df()["i"].tolist() == [1, 2]
    assert "7 events lost" in stream._repr_html_() and "lost (kernel) 7" in repr(stream)


def test_wait_returns_once_enough_lines_came() -> None:
    log = LineLog()
    stream = TextStream(Owner(), log)
    timer = threading.Timer(0.05, log.add, ("x=1\nx=2\n",))
    timer.start()
    started = time.monotonic()
    assert stream.wait(n=2, seconds=10) is stream
    timer.join()
    assert stream.received == 2 and time.monotonic() - started < 5
    assert stream.wait(n=5, seconds=0.05).received == 2
