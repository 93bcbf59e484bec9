"""Drawing images from a generator and writing sample grids."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from workbench.atomic import atomic_write


@torch.no_grad()
def generate(model, z: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Images in [-1, 1] from noise ``z``, leaving the model's weights and statistics untouched.

    BatchNorm layers normalise with the sample batch's own statistics, as the
    reference scripts' progress grids do, but their running statistics are not
    updated, so drawing samples never changes the model.
    """
    norms = [m for net in model.networks.values() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        return torch.cat([model.generate(chunk) for chunk in z.split(batch_size)]).float().clamp_(-1, 1)
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    """Write images in [-1, 1] as one PNG grid, atomically."""
    from torchvision.utils import save_image

    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_image(images.cpu(), str(tmp), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, format="png")
