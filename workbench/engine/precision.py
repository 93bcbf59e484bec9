"""fp16 training: one GradScaler per optimizer, with its state in checkpoints and overflows told apart.

``--set amp=fp16`` runs the step under float16 autocast on CUDA. Each optimizer gets its own scaler, because a
GAN's G and D steps alternate (one scaler's ``update`` after D's step would rescale G's next backward by D's
overflows). Under torchrun an overflow on any rank skips the step on every rank (the found-inf flags are
summed over the ranks before the step), so the ranks' weights stay identical. ``overflowed`` tells the loop
which steps the scalers skipped, so their non-finite losses are not read as divergence.
"""

from __future__ import annotations

import torch


class Scalers:
    """The fp16 loss scalers of a model's optimizers (``model.precision``)."""

    def __init__(self, names: list[str], device: torch.device, reduce=None):
        self.scalers = {name: torch.amp.GradScaler(device.type) for name in names}
        self.reduce = reduce  # under torchrun: an in-place sum over the ranks
        self.overflowed = torch.zeros((), dtype=torch.bool, device=device)

    def scale(self, loss: torch.Tensor, name: str) -> torch.Tensor:
        return self.scalers[name].scale(loss)

    def step(self, optimizer: torch.optim.Optimizer, name: str) -> None:
        scaler = self.scalers[name]
        scaler.unscale_(optimizer)
        found = list(scaler._per_optimizer_states[id(optimizer)]["found_inf_per_device"].values())
        if self.reduce is not None:
            for flag in found:
                self.reduce(flag)
        for flag in found:
            self.overflowed |= flag > 0
        scaler.step(optimizer)
        scaler.update()

    def start_step(self) -> None:
        self.overflowed.zero_()

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {}
        for name, scaler in self.scalers.items():
            saved = scaler.state_dict()
            state[f"{name}/scale"] = torch.tensor(float(saved.get("scale", scaler.get_scale())), dtype=torch.float64)
            state[f"{name}/growth_tracker"] = torch.tensor(int(saved.get("_growth_tracker", 0)), dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, scaler in self.scalers.items():
            saved = scaler.state_dict()
            saved.update(scale=float(state[f"{name}/scale"]), _growth_tracker=int(state[f"{name}/growth_tracker"]))
            scaler.load_state_dict(saved)
