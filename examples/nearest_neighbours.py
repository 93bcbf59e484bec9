"""How close a run's samples sit to its own training images, against held-out ones: memorisation, measured.

A Fréchet distance compares distributions, so a generator that reproduces its 1,000 training images scores
well against a test split of the same kind. This script draws N samples from a checkpoint and, in pixels,
finds each one's nearest training image (the run's own ``train_images`` subset) and nearest held-out test
image; a ratio train/test well below 1 says the samples are copies of what D saw, not new garments.

    python examples/nearest_neighbours.py runs/RUN [RUN ...] [-n 1000]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from workbench.api import resize_uint8
from workbench.data.loading import load_images, training_subset
from workbench.engine.inference import sample_images
from workbench.host.manager import load_plugins
from workbench.rundir.config import RunConfig


def nearest(samples: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Each sample's Euclidean distance to its nearest image (both flattened, in [-1, 1])."""
    return torch.cdist(samples.flatten(1), images.flatten(1)).min(dim=1).values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("-n", type=int, default=1000)
    args = parser.parse_args()
    plugins = load_plugins()
    for run in args.runs:
        config = RunConfig.from_dict(json.loads((run / "config.json").read_text()))
        size = config.hyperparams["image_size"]
        train = training_subset(load_images(config, plugins, size), config.engine["train_images"], config.dataset)
        test = load_images(config, plugins, size, split="test").images[: train.images.shape[0]]
        real = [resize_uint8(x.images if hasattr(x, "images") else x, size).float() / 127.5 - 1 for x in (train, test)]
        fake = sample_images(run / "checkpoints" / "latest.safetensors", plugins, args.n, device="cpu")
        to_train, to_test = nearest(fake, real[0]).mean().item(), nearest(fake, real[1]).mean().item()
        print(f"{run.name}: nearest training image {to_train:.2f}, nearest test image {to_test:.2f}, "
              f"ratio {to_train / to_test:.3f}")


if __name__ == "__main__":
    main()
