"""What the workbench knows about one run, folded from its events; plain Python, no UI.

A ``RunState`` eats events in order (a whole history when a finished run is
opened, a few at a time while one trains) and hands out immutable
``RunSnapshot``s that the run screen draws. Elapsed time and the ETA come from
the events' own timestamps, so replaying a log draws the same screen every time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from workbench.modeling.metrics import METRIC_KEYS, METRIC_LABELS

TAIL = 2000  # points kept per series: more than any terminal is wide
LOG_LINES = 500
MEMORY_FIELDS = ("gpu_memory_mb", "cuda_memory_mb", "memory_mb")


@dataclass(frozen=True)
class LogLine:
    """One line of the run's event log; ``index`` counts from the start of the log."""

    index: int
    time: float
    kind: str
    text: str


@dataclass(frozen=True)
class RunSnapshot:
    """Everything the run screen shows, at one moment."""

    name: str
    status: str = "starting"
    model: str = "?"
    dataset: str = "?"
    loss: str = "?"
    device: str = ""
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    epochs: int = 0
    batch: int = 0
    epoch_batches: int = 0
    batch_size: int = 0
    image_size: int = 0
    images_per_s: float | None = None
    elapsed: float = 0.0
    eta: float | None = None
    gpu_memory_mb: float | None = None
    series: dict[str, tuple[float, ...]] = field(default_factory=dict)
    latest: dict[str, float] = field(default_factory=dict)
    sample: Path | None = None
    sample_step: int | None = None
    raw_sample: Path | None = None  # the raw generator's grid beside an EMA grid (a run with ema_kimg > 0)
    log: tuple[LogLine, ...] = ()
    message: str = ""
    grid_rows: tuple[str, ...] = ()  # a conditional model's grid: the class of each row, top to bottom
    kimg: float | None = None  # thousands of images seen (the whole job), and of the planned length
    total_kimg: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running", "paused")

    def label(self, key: str) -> str:
        """The display name of a series: ``D loss`` for ``d_loss``; an eval metric keeps its own name."""
        return METRIC_LABELS.get(key, key)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):  # the log writes NaN/Inf as strings
        try:
            return float(value)
        except ValueError:
            return None
    return None


def format_duration(seconds: float | None) -> str:
    """``mm:ss`` or ``h:mm:ss``; ``--:--`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class RunState:
    """Folds a run's events into what the screen shows. Not thread-safe: one reader feeds it."""

    def __init__(self, name: str, run_path: Path | None = None):
        self.name, self.run_path = name, run_path
        self.status = "starting"
        self.fields: dict[str, Any] = {}
        self.series: dict[str, deque[float]] = {key: deque(maxlen=TAIL) for key in METRIC_KEYS}
        self.latest: dict[str, float] = {}
        self.log: deque[LogLine] = deque(maxlen=LOG_LINES)
        self.log_count = 0
        self.sample: Path | None = None
        self.sample_step: int | None = None
        self.raw_sample: Path | None = None
        self.message = ""
        self._elapsed_before = 0.0  # seconds trained in earlier sessions of this run
        self._segment_start: float | None = None
        self._last_time: float | None = None

    # -- folding --------------------------------------------------------------
    def feed(self, events: Iterable[dict]) -> bool:
        """Fold events in order; return whether anything changed."""
        changed = False
        for event in events:
            handler = getattr(self, f"_on_{event.get('type')}", None)
            when = _number(event.get("time"))
            if when is not None and self._segment_start is not None:
                self._last_time = when
            if isinstance(event.get("step"), int) and event.get("type") != "eval" and "step" in self.fields:
                self.fields["step"] = event["step"]  # paused, checkpoint, sample ... all say where the run is
            if handler is not None:
                handler(event)
            changed = True
        return changed

    def set_config(self, config: dict) -> None:
        """What the run's ``config.json`` says before its first event: its model, dataset and loss."""
        self.fields.update({key: str(config[key]) for key in ("model", "dataset", "loss") if config.get(key)})

    def set_status(self, status: str, message: str | None = None) -> bool:
        """The status read from ``state.json`` (or a launch failure); return whether it changed."""
        changed = status != self.status or (message is not None and message != self.message)
        self.status = status
        if message is not None:
            self.message = message
        return changed

    def _say(self, event: dict, text: str) -> None:
        self.log.append(LogLine(self.log_count, _number(event.get("time")) or 0.0, event["type"], text))
        self.log_count += 1

    def _close_segment(self) -> None:
        if self._segment_start is not None and self._last_time is not None:
            self._elapsed_before += max(0.0, self._last_time - self._segment_start)
        self._segment_start = self._last_time = None

    def _on_run_start(self, event: dict) -> None:
        self._close_segment()
        self._segment_start = self._last_time = _number(event.get("time"))
        config = event.get("config") or {}
        shape = event.get("image_shape") or [0, 0, 0]
        world = int(event.get("world_size") or 1)  # a torchrun job: its processes, and the whole job's batch
        device = event.get("device", "") + (f" × {world} processes" if world > 1 else "")
        self.fields.update(model=config.get("model", "?"), dataset=config.get("dataset", "?"),
                           loss=config.get("loss", "?"), device=device,
                           total_steps=int(event.get("total_steps") or 0),
                           steps_per_epoch=int(event.get("steps_per_epoch") or 0),
                           batch_size=int(event.get("batch_size") or 0), image_size=int(shape[-1]),
                           step=int(event.get("step") or 0), epoch=int(event.get("epoch") or 0),
                           grid_rows=tuple(event.get("grid_rows") or ()),
                           metric_keys=tuple(event.get("metric_keys") or METRIC_KEYS),
                           kimg=(_number(event.get("images_seen")) or 0.0) / 1000,
                           total_kimg=_number(event.get("total_kimg")))
        spe = self.fields["steps_per_epoch"] or 1
        self.fields["batch"] = self.fields["step"] - self.fields["epoch"] * spe
        self.fields.pop("images_per_s", None)
        self.status = "running"
        self.message = ""
        resumed = event.get("resumed_from")
        what = f"{self.fields['model']} on {self.fields['dataset']}, loss {self.fields['loss']}, " \
               f"{self.fields['total_steps']:,} steps"
        self._say(event, f"resumed at step {self.fields['step']:,}: {what}" if resumed else f"started: {what}")

    def _on_metrics(self, event: dict) -> None:
        for key in self.fields.get("metric_keys", METRIC_KEYS):  # the four, then what the run declared (r1, aug_p)
            value = _number(event.get(key))
            if value is not None:
                self.series.setdefault(key, deque(maxlen=TAIL)).append(value)
                self.latest[key] = value
        for key in ("step", "epoch", "batch", "kimg"):
            if isinstance(event.get(key), (int, float)) and not isinstance(event.get(key), bool):
                self.fields[key] = event[key]
        rate = _number(event.get("images_per_s"))
        if rate is not None:
            self.fields["images_per_s"] = rate
        for key in MEMORY_FIELDS:
            memory = _number(event.get(key))
            if memory is not None:
                self.fields["gpu_memory_mb"] = memory
                break

    def _on_eval(self, event: dict) -> None:
        metrics = event.get("metrics") or {}
        shown = []
        for key, raw in metrics.items():
            value = _number(raw)
            if value is None:
                continue
            self.series.setdefault(str(key), deque(maxlen=TAIL)).append(value)
            self.latest[str(key)] = value
            shown.append(f"{key} {value:.4g}")
        if shown:
            self._say(event, f"eval at step {int(event.get('step') or self.fields.get('step', 0)):,}: "
                             + ", ".join(shown))

    def _on_sample(self, event: dict) -> None:
        self.sample, self.sample_step = self._file(event), event.get("step")
        raw = event.get("raw_file") or event.get("raw_path")
        self.raw_sample = self._file({"file": event.get("raw_file"), "path": raw}) if raw else None
        self._say(event, f"sample grid at step {int(event.get('step') or 0):,}")

    def _on_checkpoint(self, event: dict) -> None:
        self._say(event, f"checkpoint written at step {int(event.get('step') or 0):,}")

    def _on_epoch_end(self, event: dict) -> None:
        self.fields["epoch"] = int(event.get("epoch") or 0) + 1
        self.fields["batch"] = 0
        self._say(event, f"epoch {self.fields['epoch']} done at step {int(event.get('step') or 0):,}")

    def _on_paused(self, event: dict) -> None:
        self.status = "paused"
        self._say(event, f"paused at step {int(event.get('step') or 0):,}")

    def _on_resumed(self, event: dict) -> None:
        self.status = "running"
        self._say(event, f"resumed at step {int(event.get('step') or 0):,}")

    def _on_warning(self, event: dict) -> None:
        self._say(event, f"warning: {event.get('message', '')}")

    def _on_error(self, event: dict) -> None:
        self._say(event, f"error: {event.get('message', '')}")

    def _on_run_end(self, event: dict) -> None:
        self.status = str(event.get("reason", "stopped"))
        self.message = str(event.get("message", ""))
        self.fields.pop("images_per_s", None)
        self._say(event, f"{self.status}: {self.message}")
        self._close_segment()

    def _file(self, event: dict) -> Path:
        """The file an event names: its ``file``, relative to the run directory, so that a run copied elsewhere
        still finds it; in a log written before events carried ``file``, the ``path`` where the writer put it."""
        file = event.get("file")
        if isinstance(file, str) and self.run_path is not None:
            return self.run_path / file
        return Path(str(event.get("path", "")))

    # -- reading --------------------------------------------------------------
    def snapshot(self) -> RunSnapshot:
        """An immutable copy of what to draw now."""
        f = self.fields
        total, spe = f.get("total_steps", 0), f.get("steps_per_epoch", 0)
        step, epoch = f.get("step", 0), f.get("epoch", 0)
        epochs = -(-total // spe) if spe else 0
        epoch_batches = min(spe, max(total - epoch * spe, 0)) if spe else 0
        batch = f.get("batch", 0)
        if spe and total and epoch * spe >= total:  # ended on an epoch boundary: show the last epoch full
            epoch_batches = batch = total - (epochs - 1) * spe
        elapsed = self._elapsed_before
        if self._segment_start is not None and self._last_time is not None:
            elapsed += max(0.0, self._last_time - self._segment_start)
        rate, eta = f.get("images_per_s"), None
        if self.status == "running" and rate and f.get("batch_size"):
            eta = (total - step) * f["batch_size"] / rate
        keys = list(METRIC_KEYS) + [k for k in self.series if k not in METRIC_KEYS]
        return RunSnapshot(
            name=self.name, status=self.status, model=f.get("model", "?"), dataset=f.get("dataset", "?"),
            loss=f.get("loss", "?"), device=f.get("device", ""), step=step, total_steps=total, epoch=epoch,
            epochs=epochs, batch=batch, epoch_batches=epoch_batches, batch_size=f.get("batch_size", 0),
            image_size=f.get("image_size", 0), images_per_s=rate, elapsed=elapsed, eta=eta,
            gpu_memory_mb=f.get("gpu_memory_mb"), series={k: tuple(self.series[k]) for k in keys},
            latest=dict(self.latest), sample=self.sample, sample_step=self.sample_step, log=tuple(self.log),
            raw_sample=self.raw_sample,
            message=self.message, grid_rows=f.get("grid_rows", ()), kimg=f.get("kimg"),
            total_kimg=f.get("total_kimg"))


def clock(seconds: float) -> str:
    """The local wall-clock time ``HH:MM:SS`` of an event."""
    return time.strftime("%H:%M:%S", time.localtime(seconds))
