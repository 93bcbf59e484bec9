"""Messages that cross from background readers to the screens.

Both can replace a pending message of their kind (toolong's pattern): a burst
of updates while the UI is busy collapses into one redraw instead of a queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from workbench.tui.run_state import RunSnapshot


@dataclass
class RunUpdated(Message):
    """A run's state changed; only the newest snapshot of a run is worth drawing."""

    snapshot: RunSnapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunUpdated) and message.snapshot.name == self.snapshot.name


@dataclass
class RunsScanned(Message):
    """A fresh scan of the runs folder: one summary row per run, newest first."""

    rows: list[dict]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsScanned)
