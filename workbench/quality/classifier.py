"""The domain classifier: a small CNN trained once per dataset; its penultimate layer replaces Inception.

Inception-v3 was trained on ImageNet photographs and needs weights from the
network; for 28x28 clothing or digits a classifier trained on the dataset itself
gives a feature space that is offline, fast on a CPU and tuned to the domain
(as "FID with a LeNet" is used for MNIST in the literature). Trained once, it is
cached on disk keyed by the dataset's content, with its test accuracy.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from workbench.base.atomic import atomic_write

VERSION = 1  # bump when the architecture or the training recipe changes: old caches are then ignored
FEATURE_DIM = 128
BATCH_SIZE = 128
MIN_SAMPLES_SEEN = 20_000  # a small training split is repeated until the network has seen this many images
MIN_EPOCHS = 2


class DomainClassifier(nn.Module):
    """Two strided 3x3 convolutions (LeNet-sized) and a 128-unit feature layer; takes uint8 images (N, C, S, S).

    :param channels: image channels.
    :param side: image side; a multiple of 4.
    :param num_classes: the dataset's classes.
    """

    def __init__(self, channels: int, side: int, num_classes: int):
        super().__init__()
        self.channels, self.side, self.num_classes = channels, side, num_classes
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, 2, 1), nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.LeakyReLU(0.1, inplace=True),
            nn.Flatten(),
            nn.Linear(32 * (side // 4) ** 2, FEATURE_DIM), nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The penultimate-layer features (N, 128) of uint8 images."""
        return self.body(images.float().mul(2 / 255).sub(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


@dataclass
class TrainedClassifier:
    """A classifier with what is known about it: test accuracy, sizes, classes, where it is cached."""

    net: DomainClassifier
    accuracy: float
    train_size: int
    test_size: int
    classes: tuple[str, ...]
    dataset: str
    seconds: float
    path: Path | None = None
    from_cache: bool = False

    def describe(self) -> str:
        """One line for people, e.g. ``domain classifier: fashion-mnist, test accuracy 90.1% (...)``."""
        origin = f"cached at {self.path}" if self.from_cache else f"trained in {self.seconds:.0f} s"
        return (f"domain classifier: {self.dataset}, test accuracy {self.accuracy:.1%} on {self.test_size:,} held-out "
                f"images, trained on {self.train_size:,} ({origin})")


@torch.no_grad()
def run_batches(net: DomainClassifier, images: torch.Tensor, device: torch.device,
                batch_size: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, 128) and logits (N, classes) of uint8 images, on the CPU in float32."""
    net.eval()
    feats, logits = [], []
    for chunk in images.split(batch_size):
        f = net.features(chunk.to(device))
        feats.append(f.float().cpu())
        logits.append(net.head(f).float().cpu())
    return torch.cat(feats), torch.cat(logits)


def train_classifier(images: torch.Tensor, labels: torch.Tensor, num_classes: int, device: torch.device,
                     seed: int = 0) -> DomainClassifier:
    """Train a ``DomainClassifier`` on uint8 images and int64 labels; deterministic for a seed on one device."""
    torch.manual_seed(seed)
    n = images.shape[0]
    net = DomainClassifier(images.shape[1], images.shape[-1], num_classes).to(device)
    steps_per_epoch = max(1, n // BATCH_SIZE)
    epochs = max(MIN_EPOCHS, math.ceil(MIN_SAMPLES_SEEN / (steps_per_epoch * BATCH_SIZE)))
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=4e-3, total_steps=total)
    images, labels = images.to(device), labels.to(device)
    order = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=order).to(device)
        for b in range(steps_per_epoch):
            index = perm[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
            batch = images[index]
            # a one-pixel random shift: cheap augmentation that makes the features less pixel-exact
            dx, dy = (int(v) for v in torch.randint(-1, 2, (2,), generator=order))
            batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net(batch), labels[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    net.eval()
    return net


def accuracy(net: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> float:
    """The fraction of ``images`` the classifier labels correctly."""
    _, logits = run_batches(net, images, device)
    return float((logits.argmax(1) == labels.cpu()).float().mean())


def save_classifier(path: Path, trained: TrainedClassifier) -> None:
    """Write the weights and what is known about them into one safetensors file, atomically."""
    from safetensors.torch import save_file

    net = trained.net
    meta = {"version": VERSION, "dataset": trained.dataset, "accuracy": trained.accuracy,
            "train_size": trained.train_size, "test_size": trained.test_size, "classes": list(trained.classes),
            "channels": net.channels, "side": net.side, "num_classes": net.num_classes, "seconds": trained.seconds,
            "time": round(time.time(), 3)}
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_file(state, str(tmp), metadata={"ganbench-classifier": json.dumps(meta)})


def load_classifier(path: Path, device: torch.device) -> TrainedClassifier | None:
    """The cached classifier at ``path``, or None if it is missing, unreadable or from another version."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["ganbench-classifier"])
        if meta.get("version") != VERSION:
            return None
        net = DomainClassifier(meta["channels"], meta["side"], meta["num_classes"])
        net.load_state_dict(load_file(str(path)))
    except Exception:  # a damaged cache is retrained, never fatal
        return None
    net.to(device).eval()
    return TrainedClassifier(net, meta["accuracy"], meta["train_size"], meta["test_size"], tuple(meta["classes"]),
                             meta["dataset"], meta["seconds"], path, from_cache=True)
