"""Noticing a run going wrong: NaN/Inf losses or weights, and the classic GAN failure signature.

The loop records each step's losses on the device (no host sync) in a
``LossWindow``; at every logging interval, and before every checkpoint or
sample grid, one sync reads the window and says which step first went
non-finite, so divergence is caught within ``log_every`` steps and a bad
checkpoint is never written. ``StepGuard`` undoes a single bad step for
``on_nan=skip``; ``FailureWatch`` warns when D wins outright.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from workbench.engine.state import live_tensors

MAX_SKIPS_IN_A_ROW = 20  # with on_nan=skip: this many bad steps in a row means the run has diverged anyway


def finite_weights(model) -> torch.Tensor:
    """A device bool: every parameter of every network is finite (no host sync)."""
    checks = [torch.isfinite(p).all() for net in model.networks.values() for p in net.parameters()]
    return torch.stack(checks).all() if checks else torch.ones((), dtype=torch.bool)


@dataclass
class WindowSummary:
    """What the steps since the last log looked like."""

    count: int
    means: list[float]
    first_bad: int | None  # index in the window of the first step with a NaN/Inf value
    weights_finite: bool


class LossWindow:
    """Per-step loss values kept on the device until the next logging interval."""

    def __init__(self, capacity: int, width: int, device: torch.device):
        self.values = torch.zeros(capacity, width, device=device)
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == self.values.shape[0]

    def add(self, values: torch.Tensor) -> None:
        """Record one step's values (a 1-D tensor on the device)."""
        self.values[self.count] = values
        self.count += 1

    def summarize(self, model, average: Callable[[torch.Tensor], torch.Tensor] | None = None) -> WindowSummary:
        """Means, the first non-finite step and the weights' health in one host sync; empties the window.

        :param average: under torchrun, averages the packed summary over the ranks (the interval's one
            collective): the means become the job's, and a step or weight counts as finite only if it is
            finite on every rank (the average of the 0/1 flags is 1).
        """
        count, width = self.count, self.values.shape[1]
        window = self.values[:count]
        packed = torch.cat([window.mean(0) if count else torch.zeros(width, device=window.device),
                            torch.isfinite(window).all(1).float(), finite_weights(model).float().view(1)])
        numbers = (average(packed) if average is not None else packed).tolist()
        self.count = 0
        bad = [i for i, ok in enumerate(numbers[width:width + count]) if ok < 1]
        return WindowSummary(count, numbers[:width], bad[0] if bad else None, numbers[-1] >= 1)


class StepGuard:
    """Takes back one training step: every weight, buffer and optimizer slot as it was before the step.

    Costs a copy of the model and optimizer state per step and one host sync per
    step, so it is used only when the run asks for ``on_nan=skip``.
    """

    def __init__(self, model, agree: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.model = model
        self.agree = agree  # under torchrun: the verdict of every rank together, so all keep or undo the step
        self.saved: list[torch.Tensor] = []
        self.live: list[torch.Tensor] = []
        self.slot_counts: list[int] = []
        self.in_a_row = 0

    def _live_tensors(self) -> list[torch.Tensor]:
        return live_tensors(self.model)  # weights, moments and the buffers parts (ADA's accumulators ...)

    @torch.no_grad()
    def save(self) -> None:
        """Remember the state before a step."""
        live = self._live_tensors()
        if len(live) != len(self.saved):  # first call, or the optimizers just created their slots
            self.saved = [t.clone() for t in live]
        else:
            torch._foreach_copy_(self.saved, live)
        self.live = live
        self.slot_counts = [len(opt.state) for opt in self.model.optimizers.values()]

    @torch.no_grad()
    def accept(self, values: torch.Tensor) -> bool:
        """Keep the step if its losses and the new weights are finite; otherwise undo it and return False."""
        verdict = (torch.isfinite(values).all() & finite_weights(self.model)).float()
        if (self.agree(verdict) if self.agree is not None else verdict).item() >= 1:
            self.in_a_row = 0
            return True
        torch._foreach_copy_(self.live, self.saved)
        for opt, count in zip(self.model.optimizers.values(), self.slot_counts):
            if len(opt.state) != count:  # the undone step was the first: it created the slots
                opt.state.clear()
        self.in_a_row += 1
        return False


# Losses whose discriminator loss is non-negative, with what "D near 0" and "G exploding" mean for each.
_THRESHOLDS = {"bce": (0.05, 5.0), "lsgan": (0.01, 0.9), "hinge": (0.01, 5.0)}


class FailureWatch:
    """Warns once when D's loss collapses towards 0 while G's loss explodes, for ``patience`` logs in a row.

    That is the failure users of the DCGAN example report: D separates real from
    fake perfectly, G's gradient vanishes and the samples stop improving.
    """

    def __init__(self, loss_name: str, patience: int = 3):
        self.thresholds = _THRESHOLDS.get(loss_name)
        self.patience, self.streak, self.warned = patience, 0, False

    def update(self, step: int, d_loss: float, g_loss: float) -> str | None:
        """Feed one logged interval; return a warning sentence the first time the signature holds."""
        if self.thresholds is None:
            return None
        d_floor, g_ceiling = self.thresholds
        if d_loss < d_floor and g_loss > g_ceiling:
            self.streak += 1
        else:
            self.streak, self.warned = 0, False
        if self.streak < self.patience or self.warned:
            return None
        self.warned = True
        return (f"At step {step} D's loss is {d_loss:.4f} while G's loss is {g_loss:.2f}: the discriminator has won "
                f"and G gets almost no gradient (a classic GAN failure); try a lower learning rate, "
                f"fewer D updates or another --loss.")
