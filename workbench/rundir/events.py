"""The run's event log: ``events.jsonl``, one JSON object per line, append-only.

The console, the workbench and any later reader consume the same events.
A line torn by a crash is skipped on reading.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterator

Event = dict[str, Any]


def _clean(value: Any) -> Any:
    # JSON has no NaN/Inf: write them as strings so the line stays valid for every reader.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def make_event(type_: str, **fields: Any) -> Event:
    """An event: its ``type``, the wall-clock ``time`` and the fields, NaN/Inf written as strings."""
    return {"type": type_, "time": round(time.time(), 3), **{k: _clean(v) for k, v in fields.items()}}


class EventLog:
    """Appends events to ``path``; every event gets a ``type`` and a wall-clock ``time``.

    Each event is one ``write`` of a whole line to a file opened for appending,
    so a crash leaves at most one torn last line. Reopening a log whose last
    line is torn (a run killed mid-write, then resumed) first ends that line,
    so the new events stay readable.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._torn = _ends_torn(path)

    def write(self, type_: str, **fields: Any) -> Event:
        """Append one event and return it; raises OSError when the disk refuses the write."""
        return self.append(make_event(type_, **fields))

    def append(self, event: Event) -> Event:
        """Append an event made by ``make_event``; raises OSError when the disk refuses the write."""
        line = json.dumps(event, separators=(",", ":"), default=str) + "\n"
        data = ("\n" + line if self._torn else line).encode("utf-8")
        self._torn = True  # until the whole line is down: a failed write leaves a torn line behind
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:  # name the file: "No space left on device" alone does not say where
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._torn = False
        return event

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _ends_torn(path: Path) -> bool:
    """True when the file is non-empty and does not end with a newline."""
    try:
        with open(path, "rb") as handle:
            if handle.seek(0, 2) == 0:
                return False
            handle.seek(-1, 2)
            return handle.read(1) != b"\n"
    except OSError:
        return False


def read_events(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Read complete events from byte ``offset``; return them and the offset to continue from.

    An unfinished last line (a writer mid-write, or a crash) is left for the next read.
    """
    events: list[Event] = []
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return events, offset
    end = data.rfind(b"\n") + 1
    for line in data[:end].splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line torn by a crash before the newline of the next write
        if isinstance(event, dict) and "type" in event:
            events.append(event)
    return events, offset + end


def iter_events(path: Path) -> Iterator[Event]:
    """Every complete event of a log."""
    yield from read_events(path)[0]
