"""What a sweep prints: on a terminal one live line per running trial; otherwise plain timestamped lines."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from workbench.sweep.space import point_label

PLAIN_SECONDS = 10.0


def _when() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _steps(trial) -> str:
    return f"{trial.step:,}/{trial.total_steps:,}" if trial.total_steps else f"{trial.step:,}"


def _ended(entry: dict, metric: str) -> str:
    text = entry["status"]
    if entry.get("objective") is not None:
        text += f", {metric} {entry['objective']:.4g} at step {entry['objective_step']:,}"
    if entry.get("status") in ("failed", "diverged", "crashed") and entry.get("message"):
        text += f": {entry['message']}"
    return text


class PlainProgress:
    """Lines for a log file: each trial's start and end, pruning, and every 10 s each running trial's step."""

    def __init__(self, metric: str, stream: TextIO = sys.stdout):
        self.metric, self.stream = metric, stream
        self._next: dict[str, float] = {}

    def line(self, text: str) -> None:
        try:
            print(f"{_when()} {text}", file=self.stream, flush=True)
        except OSError:
            pass  # the terminal is gone: the manifest and the runs say it all

    def started(self, trial, entry: dict, resumed: bool) -> None:
        verb = "resumed" if resumed else "started"
        self.line(f"{trial.name}: {verb} ({point_label(entry['point'])}, seed {entry['seed']}) on {trial.where}")
        self._next[trial.name] = time.monotonic() + PLAIN_SECONDS

    def progress(self, trial) -> None:
        if time.monotonic() >= self._next.get(trial.name, 0.0):
            self._next[trial.name] = time.monotonic() + PLAIN_SECONDS
            objective = f"  {self.metric} {trial.objective:.4g}" if trial.objective is not None else ""
            self.line(f"{trial.name}: step {_steps(trial)}{objective}")

    def ended(self, trial, entry: dict) -> None:
        self._next.pop(trial.name, None)
        self.line(f"{trial.name}: {_ended(entry, self.metric)}")

    def close(self) -> None:
        pass


class LiveProgress(PlainProgress):
    """On a terminal: the same start/end lines, and below them one live line per running trial."""

    def __init__(self, metric: str, stream: TextIO = sys.stdout):
        super().__init__(metric, stream)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream)
        self.trials: dict[str, object] = {}
        self.live = Live(self._render(), console=self.console, refresh_per_second=2, transient=True)
        self.live.start()

    def _render(self):
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        for trial in getattr(self, "trials", {}).values():
            done = trial.step / trial.total_steps if trial.total_steps else 0.0
            bar = "█" * int(done * 20) + "░" * (20 - int(done * 20))
            objective = f"{self.metric} {trial.objective:.4g}" if trial.objective is not None else ""
            table.add_row(trial.name[:40], bar, _steps(trial), objective)
        return table

    def line(self, text: str) -> None:
        self.console.print(f"{_when()} {text}", markup=False, highlight=False)

    def started(self, trial, entry: dict, resumed: bool) -> None:
        super().started(trial, entry, resumed)
        self.trials[trial.name] = trial
        self.live.update(self._render())

    def progress(self, trial) -> None:
        self.live.update(self._render())

    def ended(self, trial, entry: dict) -> None:
        self.trials.pop(trial.name, None)
        super().ended(trial, entry)
        self.live.update(self._render())

    def close(self) -> None:
        self.live.stop()


def make_sweep_progress(metric: str, stream: TextIO = sys.stdout):
    """Live lines on a terminal, plain timestamped lines otherwise (like ``ganbench run``)."""
    return LiveProgress(metric, stream) if stream.isatty() else PlainProgress(metric, stream)
