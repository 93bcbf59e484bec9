"""When the loop does what: after each step, which writes are due, and when the next metrics event is."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.data.device import DeviceImages
    from workbench.rundir.config import RunConfig


def total_steps(config: RunConfig, data: DeviceImages) -> int:
    """The run's length in steps: ``--steps``, else ``--kimg`` thousand images of the whole job, else epochs."""
    if config.steps:
        return config.steps
    if config.kimg:
        return max(1, math.ceil(config.kimg * 1000 / data.global_batch_size))
    return config.hyperparams["epochs"] * data.steps_per_epoch


@dataclass
class Due:
    """What the loop does after a step."""

    sample: bool
    checkpoint: bool
    eval: bool
    end: bool

    @property
    def write(self) -> bool:
        return self.sample or self.checkpoint

    @classmethod
    def after(cls, step: int, total_steps: int, engine: dict, control, evaluates: bool) -> Due:
        """What is due after ``step`` under the engine settings and the requests in ``control``."""
        sample = bool(engine["sample_every"]) and step % engine["sample_every"] == 0
        checkpoint = step % engine["checkpoint_every"] == 0 or control.checkpoint_requested
        evaluate = evaluates and bool(engine["eval_every"]) and step % engine["eval_every"] == 0
        return cls(sample, checkpoint, evaluate, end=step >= total_steps or control.stop_requested)


class LogClock:
    """When the next metrics event is due: every ``every`` steps, every ``seconds``, or when the window is full."""

    def __init__(self, every: int, seconds: float, step: int):
        self.every, self.seconds = every, seconds
        self.restart(step, time.monotonic())

    def restart(self, step: int, now: float) -> None:
        self.since_step, self.since_time = step, now

    def due(self, step: int, now: float, window_full: bool) -> bool:
        return window_full or step % self.every == 0 or now - self.since_time >= self.seconds


class TimeLimit:
    """``time_limit``: minutes of training this process may take, the evaluations' seconds not counted."""

    def __init__(self, minutes: float, now: float):
        self.seconds, self.started, self.excluded, self.reached = minutes * 60, now, 0.0, False

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds

    def over(self, now: float) -> bool:
        """True from the first step past the limit on (never without one)."""
        self.reached = self.reached or (self.seconds > 0 and now - self.started - self.excluded >= self.seconds)
        return self.reached
