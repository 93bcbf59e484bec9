"""Commands to a running training process: stop, pause, resume, checkpoint.

Another process (the workbench, a script) drops a file into the run's
``requests/`` folder with ``send_request``; the training loop picks it up
within a fraction of a second. Signals (Ctrl-C, SIGTERM) reach the same flags.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

COMMANDS = ("stop", "pause", "resume", "checkpoint")


def send_request(run_path: Path, command: str) -> Path:
    """Ask the process training the run at ``run_path`` to ``stop``, ``pause``, ``resume`` or ``checkpoint``."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    folder = Path(run_path) / "requests"
    folder.mkdir(exist_ok=True)
    path = folder / f"{time.time_ns()}-{os.getpid()}.{command}"
    path.touch()
    return path


class RunControl:
    """Flags the loop checks between steps; ``poll`` reads the requests folder at most every ``interval`` s."""

    def __init__(self, requests: Path | None = None, interval: float = 0.2):
        self.requests, self.interval = requests, interval
        self.stop_requested = False
        self.paused = False
        self.checkpoint_requested = False
        self.stop_reason = "stopped"
        self._next_poll = 0.0

    def request_stop(self, reason: str = "stopped") -> None:
        self.stop_requested, self.stop_reason = True, reason

    def poll(self, now: float) -> None:
        if self.requests is None or now < self._next_poll:
            return
        self._next_poll = now + self.interval
        try:
            names = sorted(os.listdir(self.requests))
        except OSError:
            return
        for name in names:
            command = name.rsplit(".", 1)[-1]
            try:
                os.unlink(self.requests / name)
            except OSError:
                continue
            if command == "stop":
                self.request_stop()
            elif command == "pause":
                self.paused = True
            elif command == "resume":
                self.paused = False
            elif command == "checkpoint":
                self.checkpoint_requested = True
