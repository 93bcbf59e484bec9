"""The run's event log: ``events.jsonl``, one JSON object per line, append-only.

The console, the workbench and any later reader consume the same events.
A line torn by a crash is skipped on reading.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Iterator

Event = dict[str, Any]


def _clean(value: Any) -> Any:
    # JSON has no NaN/Inf: write them as strings so the line stays valid for every reader.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


class EventLog:
    """Appends events to ``path``; every event gets a ``type`` and a wall-clock ``time``."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def write(self, type_: str, **fields: Any) -> Event:
        event = {"type": type_, "time": round(time.time(), 3), **{k: _clean(v) for k, v in fields.items()}}
        self._file.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._file.flush()
        return event

    def close(self) -> None:
        self._file.close()


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
