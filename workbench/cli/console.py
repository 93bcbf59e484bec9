"""Console progress for headless runs, built from the run's events.

On a terminal: rich progress bars for epochs and batches with the losses,
images/s and ETA. Elsewhere (nohup, a scheduler's log, CI): one plain
timestamped line every ``interval`` seconds, plus a line per sample grid,
checkpoint and the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from workbench.modeling.metrics import METRIC_KEYS, METRIC_LABELS
from workbench.rundir.events import Event


def metrics_text(event: Event, extra: tuple[str, ...] = ()) -> str:
    """The four numbers, then the ``extra`` ones a model or the engine declared (``r1 0.0213  aug_p 0.127``),
    the images seen and the rate."""
    values = "  ".join(f"{METRIC_LABELS[key]} {event[key]:{'.4f' if key.endswith('loss') else '.3f'}}"
                       for key in METRIC_KEYS)
    values += "".join(f"  {key} {_number(event[key])}" for key in extra if key in event)
    kimg = f"  {event['kimg']:,.1f} kimg" if isinstance(event.get("kimg"), (int, float)) else ""
    return f"{values}{kimg}  {event['images_per_s']:,.0f} img/s"


def extra_keys(run_start: Event) -> tuple[str, ...]:
    """The metrics a run declared beyond the four, from its ``run_start`` event."""
    return tuple(key for key in run_start.get("metric_keys", ()) if key not in METRIC_KEYS)


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)  # the log writes NaN as a string


def job_text(event: Event) -> str:
    """`` × 2 processes, batch 64 = 2 × 32`` for a torchrun job's ``run_start``; nothing for one process."""
    world = event.get("world_size")
    if not world:
        return ""
    return f" × {world} processes, batch {event['batch_size']} = {world} × {event['batch_per_rank']}"


def eval_text(event: Event) -> str:
    """The quality metrics of an ``eval`` event, e.g. ``fd 14.7  classes_covered 10``."""
    return "  ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}"
                     for name, value in event.get("metrics", {}).items())


class PlainProgress:
    """Timestamped lines, rate-limited, for logs that are not a terminal."""

    def __init__(self, stream: TextIO = sys.stdout, interval: float = 10.0):
        self.stream, self.interval = stream, interval
        self.total = self.spe = 1
        self.extra: tuple[str, ...] = ()
        self._last = 0.0

    def _line(self, text: str) -> None:
        self.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        kind = event["type"]
        if kind == "run_start":
            self.total, self.spe, self.extra = event["total_steps"], event["steps_per_epoch"], extra_keys(event)
            resumed = f", resumed from {event['resumed_from']}" if event.get("resumed_from") else ""
            self._line(f"run {event['config']['name']}: {event['config']['model']} on {event['config']['dataset']} "
                       f"({event['dataset_size']:,} images), {event['device']}{job_text(event)}, "
                       f"{self.total:,} steps{resumed}")
        elif kind == "metrics":
            now = time.monotonic()
            if now - self._last >= self.interval or event["step"] >= self.total:
                self._last = now
                self._line(f"epoch {event['epoch'] + 1} step {event['step']:,}/{self.total:,}  {metrics_text(event, self.extra)}")
        elif kind in ("sample", "checkpoint"):
            self._line(f"{kind} written: {event['path']}")
        elif kind == "eval":
            self._line(f"quality at step {event['step']:,}: {eval_text(event)}")
        elif kind in ("warning", "error", "paused", "resumed"):
            self._line(f"{kind}: {event.get('message', 'step ' + str(event.get('step')))}")
        elif kind == "run_end":
            self._line(f"{event['reason']}: {event['message']}")


class RichProgress:
    """Two progress bars (epochs, batches) and a metrics line, for interactive terminals."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        self.console = console or Console(stderr=False)
        self.progress = Progress(TextColumn("{task.description:>7}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=self.console, transient=False)
        self.epoch_task = self.batch_task = None
        self.spe, self.extra = 1, ()

    def __call__(self, event: Event) -> None:
        kind, progress = event["type"], self.progress
        if kind == "run_start":
            cfg = event["config"]
            self.spe, self.extra = event["steps_per_epoch"], extra_keys(event)
            epochs = -(-event["total_steps"] // self.spe)
            self.console.print(f"[bold]{cfg['name']}[/]: {cfg['model']} on {cfg['dataset']} "
                               f"({event['dataset_size']:,} images, {event['dataset_source']}), loss {cfg['loss']}, "
                               f"{event['device']}{job_text(event)}")
            progress.start()
            self.epoch_task = progress.add_task("epoch", total=epochs, completed=event["epoch"], info="")
            self.batch_task = progress.add_task("batch", total=min(self.spe, event["total_steps"]),
                                                completed=event["step"] % self.spe, info="")
        elif kind == "metrics":
            progress.update(self.batch_task, completed=event["batch"], info=metrics_text(event, self.extra))
            progress.update(self.epoch_task, completed=event["epoch"])
        elif kind == "epoch_end":
            progress.update(self.epoch_task, completed=event["epoch"] + 1)
            progress.reset(self.batch_task, total=self.spe, info=progress.tasks[self.batch_task].fields["info"])
        elif kind == "eval":
            self.console.print(f"quality at step {event['step']:,}: {eval_text(event)}", highlight=False)
        elif kind in ("warning", "error"):
            self.console.print(f"[yellow]{kind}:[/] {event['message']}")
        elif kind == "checkpoint":
            progress.update(self.epoch_task, info=f"checkpoint step {event['step']:,}")
        elif kind == "run_end":
            progress.stop()
            style = "green" if event["reason"] == "completed" else "yellow"
            self.console.print(f"[{style}]{event['reason']}[/]: {event['message']}")


def make_progress(stream: TextIO = sys.stdout):
    """Rich bars on a terminal, plain lines otherwise."""
    return RichProgress() if stream.isatty() else PlainProgress(stream)
