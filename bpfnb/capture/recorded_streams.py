"""A recorded ring or perf buffer: every event it delivered while recording, read like a live stream.

A buffer may have been streamed more than once while recording (each
``prog.stream(name)`` call is one part of the recording, with the options it
was opened with); a recorded stream holds all of their rows, in the order
they came. Opening it takes the options of a live stream, applied to those
rows: ``time_field=`` recomputes ``time`` from an event field with the
recording machine's clocks, ``decode=`` names numbers as that machine did,
``max_rows=``/``max_bytes=`` keep only the newest rows (counting the others
as dropped; without them every row is kept, as the capture holds them), and
``on_batch=``/``parquet=`` receive every row at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from ..decode.decoders import Decoder, apply_decoders
from ..display import html as _html
from ..errors import ArgumentError, DecodeError
from .files import recorded
from .owner import RecordingOwner
from .replay import Replay, Replayable

__all__ = ["RecordedStream"]


class RecordedStream(Replayable):
    """The events one buffer delivered while recording; made by ``program.stream(name, ...)`` of a capture."""

    # The options of a live stream (bpfnb.streams.stream.open_stream), spelled out: a wrong name is a TypeError.
    def __init__(
        self,
        program: RecordingOwner,
        parts: Sequence[Mapping[str, Any]],
        *,
        time_field: str | None = None,
        time_clock: str = "monotonic",
        decode: Mapping[str, Decoder] | None = None,
        max_rows: int | None = None,
        max_bytes: int | None = None,
        parquet: str | os.PathLike[str] | None = None,
        on_batch: Callable[[pd.DataFrame], Any] | None = None,
        pages: int | None = None,
    ) -> None:
        if (max_rows is not None and max_rows < 1) or (max_bytes is not None and max_bytes < 1):
            raise ArgumentError(f"max_rows and max_bytes must be positive, not {max_rows} and {max_bytes}")
        if pages is not None and (pages < 1 or pages & (pages - 1)):
            raise ArgumentError(f"pages must be a power of two, not {pages}")
        self.program = program
        self.name: str = parts[0]["name"]
        self.kind: str = parts[0]["kind"]
        self._parts = parts
        capture = program.capture
        frames = [_in_time_order(capture.files.frame(part["table"])) for part in parts]
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        if time_field is not None:
            frame = self._timed(frame, time_field, time_clock)
        if decode:
            frame = apply_decoders(frame, decode, named=capture.decoders)
        self._all = recorded(frame)
        # Every row, unless bounds are given: then the newest rows within both, as a live stream keeps them.
        keep = len(frame)
        if max_rows is not None:
            keep = min(keep, max_rows)
        if max_bytes is not None:
            keep = min(keep, max_bytes // max(int(parts[0]["record_size"]), 1))
        self._held = recorded(frame.iloc[len(frame) - keep :].reset_index(drop=True))
        self._cut = len(frame) - keep
        self.callback_errors = 0
        self.last_error: BaseException | None = None
        if parquet is not None:
            frame.to_parquet(parquet, index=False)
        if on_batch is not None:
            self.on_batch(on_batch)

    def _timed(self, frame: pd.DataFrame, field: str, clock: str) -> pd.DataFrame:
        if field not in frame.columns:
            raise DecodeError(f"time_field={field!r} is not a field of the event", hint=f"fields are: {', '.join(frame.columns)}")
        if all(part["options"].get("time_field") == field and part["options"].get("time_clock") == clock for part in self._parts):
            return frame
        decoded = apply_decoders(frame[[field]], {field: clock}, named=self.program.capture.decoders)
        return frame.assign(time=decoded[field].array)

    # -- what it holds -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._held)

    @property
    def received(self) -> int:
        """Events the buffer's streams received while recording."""
        return sum(int(part["received"]) for part in self._parts)

    @property
    def lost(self) -> int:
        """Events the kernel could not deliver while recording (the buffer was full)."""
        return sum(int(part["lost"]) for part in self._parts)

    @property
    def dropped(self) -> int:
        """Rows this view leaves out to stay within its own ``max_rows``/``max_bytes`` (the oldest)."""
        return self._cut

    @property
    def dropped_live(self) -> int:
        """Rows the live streams dropped from memory to stay within their retention (the capture kept them)."""
        return sum(int(part["dropped"]) for part in self._parts)

    @property
    def not_recorded(self) -> int:
        """Rows received but not in the capture: the recorder fell behind, or rotation removed them."""
        tables = self.program.capture.files.manifest["tables"]
        rotated = sum(int(tables.get(part["table"], {}).get("rotated_rows", 0)) for part in self._parts)
        return sum(int(part["not_recorded"]) for part in self._parts) + rotated

    @property
    def hosts(self) -> pd.DataFrame | None:
        """Per host of a stream recorded across hosts: rows in the capture, events lost in its kernel, dropped; else None."""
        if not all("hosts" in part for part in self._parts):
            return None
        counts: dict[str, dict[str, int]] = {}
        for part in self._parts:
            for host, got in part["hosts"].items():
                mine = counts.setdefault(host, {"lost": 0, "dropped_on_host": 0, "dropped_here": 0})
                for name in mine:
                    mine[name] += int(got[name])
        rows = self._all["host"].value_counts() if "host" in self._all.columns else pd.Series(dtype=int)
        frame = pd.DataFrame(
            [{"host": h, "rows": int(rows.get(h, 0)), **c} for h, c in counts.items()],
            columns=["host", "rows", "lost", "dropped_on_host", "dropped_here"],
        )
        return frame

    @property
    def rate(self) -> float:
        """Events per second over the recording."""
        seconds = self.program.capture.duration.total_seconds()
        return self.received / seconds if seconds > 0 else 0.0

    state = "recorded"
    running = False

    def df(self) -> pd.DataFrame:
        """The rows held: ``time`` (``cpu`` for perf buffers), then the event's fields, as the live stream gave them."""
        return self._held.copy()

    def to_parquet(self, path: str | os.PathLike[str], **options: Any) -> None:
        """Write the rows held to a Parquet file (options go to ``DataFrame.to_parquet``)."""
        self._held.to_parquet(path, index=False, **options)

    # -- the live stream's verbs ---------------------------------------------------------

    def on_batch(self, fn: Callable[[pd.DataFrame], Any]) -> Callable[[pd.DataFrame], Any]:
        """Call ``fn`` once, with every recorded row as one batch; returns ``fn``."""
        try:
            fn(self._all.copy())
        except Exception as exc:  # the user's code: counted and shown, as for a live stream
            self.callback_errors += 1
            self.last_error = exc
        return fn

    def wait(self, n: int | None = None, *, seconds: float | None = None) -> RecordedStream:
        """Return at once: every recorded event is already here."""
        return self

    def stop(self) -> None:
        """Nothing to stop: the recording is over."""

    def _replay(self, kind: str | None, *, speed: float, interval: float, options: dict[str, Any]) -> tuple[str, Replay]:
        return kind or "line", Replay(self._held, speed=speed, counters={"lost": self.lost, "dropped": self.dropped})

    # -- display ---------------------------------------------------------------------

    def _summary(self) -> list[tuple[str, str]]:
        start, end = self.program.capture.window
        return [
            ("state", f"recorded {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"),
            ("rows", f"{len(self):,}"),
            ("received", f"{self.received:,}"),
            ("rate", f"{self.rate:,.0f} events/s over the recording"),
            ("lost (kernel)", f"{self.lost:,}"),
            ("dropped (retention)", f"{self.dropped:,} here, {self.dropped_live:,} by the live stream (kept in the capture)"),
            ("not recorded", f"{self.not_recorded:,}"),
        ]

    def __repr__(self) -> str:
        return (
            f"<bpfnb recorded stream {self.name!r} ({self.kind}): {len(self):,} rows, received {self.received:,}, "
            f"lost {self.lost:,}, dropped {self.dropped:,}>"
        )

    def _repr_html_(self) -> str:
        parts = [_html.facts(self._summary())]
        if self.lost:
            parts.append(_html.note(f"{self.lost:,} events lost in the kernel: the buffer was full.", kind="bad"))
        if self.not_recorded:
            parts.append(_html.note(f"{self.not_recorded:,} events received but not in the capture.", kind="bad"))
        hosts = self.hosts
        if hosts is not None:
            parts.append(_html.table(list(hosts.columns), hosts.itertuples(index=False)))
        return _html.card(f"Stream {self.name} ({self.kind}), recorded", *parts)


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one part in time order: across hosts, a host that answered late wrote older rows after newer ones."""
    if "host" not in frame.columns or "time" not in frame.columns:
        return frame
    return frame.sort_values("time", kind="stable", ignore_index=True)
