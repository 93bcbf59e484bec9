"""Optional standard Inception-v3 FID and KID, for numbers comparable with papers.

Used only where ``torch-fidelity`` or ``pytorch-fid`` is installed and its
Inception weights are already on disk (the torch hub cache, or the file named
by ``GANBENCH_INCEPTION_WEIGHTS`` for torch-fidelity): nothing is downloaded,
so an offline machine gets a clear sentence instead of a hang. On a CPU,
10,000 images take many minutes; these metrics are meant for GPU boxes.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Callable

import torch

TORCH_FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"
BATCH_SIZE = 100


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _hub_file(name: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def backend() -> tuple[str, Path] | None:
    """("torch-fidelity" or "pytorch-fid", the weights file) when one can run here without a download."""
    if _installed("torch_fidelity"):
        override = os.environ.get("GANBENCH_INCEPTION_WEIGHTS")
        path = Path(override).expanduser() if override else _hub_file(TORCH_FIDELITY_WEIGHTS)
        if path.is_file():
            return "torch-fidelity", path
    if _installed("pytorch_fid") and _hub_file(PYTORCH_FID_WEIGHTS).is_file():
        return "pytorch-fid", _hub_file(PYTORCH_FID_WEIGHTS)
    return None


def unavailable_reason() -> str | None:
    """None when Inception metrics can run here, else the sentence saying what is missing."""
    if backend() is not None:
        return None
    folder = _hub_file("").parent
    if not (_installed("torch_fidelity") or _installed("pytorch_fid")):
        return (f"it needs torch-fidelity or pytorch-fid (pip install torch-fidelity) and their Inception weights "
                f"in {folder}.")
    return (f"the Inception weights are not on disk: put {TORCH_FIDELITY_WEIGHTS} (torch-fidelity) or "
            f"{PYTORCH_FID_WEIGHTS} (pytorch-fid) in {folder}, or set GANBENCH_INCEPTION_WEIGHTS.")


def feature_extractor(device: torch.device) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """The backend's name and a function from uint8 RGB images (N, 3, H, W) to pool3 features (N, 2048)."""
    found = backend()
    if found is None:
        raise RuntimeError(unavailable_reason())
    name, path = found
    if name == "torch-fidelity":
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        net.to(device)
        return name, lambda x: net(x.to(device))[0]
    from pytorch_fid.inception import InceptionV3  # reads the weights from the torch hub cache checked above

    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
    return name, lambda x: net(x.to(device).float().div(255))[0].flatten(1)


@torch.no_grad()
def inception_features(extract: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Pool3 features of uint8 images (N, C, H, W); grey images are repeated to three channels."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return torch.cat([extract(chunk.contiguous()).float().cpu() for chunk in images.split(BATCH_SIZE)])


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> float:
    """KID (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel, averaged over subsets."""
    real, fake = real.double(), fake.double()
    m = min(subset_size, real.shape[0], fake.shape[0])
    dim = real.shape[1]
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = real[torch.randperm(real.shape[0], generator=gen)[:m]]
        y = fake[torch.randperm(fake.shape[0], generator=gen)[:m]]
        kxx, kyy, kxy = ((a @ b.T / dim + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        off = lambda k: (k.sum() - k.diagonal().sum()) / (m * (m - 1))
        total += float(off(kxx) + off(kyy) - 2 * kxy.mean())
    return total / subsets
