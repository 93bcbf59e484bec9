"""Loading a run's dataset: ask the dataset plugin for its images (``engine/data.py`` puts them on the device)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from workbench.base.errors import DataError
from workbench.host.manager import PluginSet
from workbench.host.registry import DataRequest, ImageData
from workbench.host.translation import PAIRED_FIELDS
from workbench.rundir.config import RunConfig


def load_images(config: RunConfig, plugins: PluginSet, image_size: int, split: str = "train") -> ImageData:
    """The images (and labels, if any) of the run's dataset.

    The registry's dataset specs are guarded (``workbench.host.validation.guard``): a plugin that raises or
    returns something other than uint8 (N, C, H, W) is already one sentence naming the plugin.
    """
    spec = plugins.registry.dataset(config.dataset)
    request = DataRequest(root=Path(config.data_root).expanduser() if config.data_root else None,
                          download=config.download, image_size=image_size, split=split)
    data = spec.load(request)
    if data.images.shape[0] == 0:
        raise DataError(f'Dataset "{config.dataset}" holds no images.')
    return data


SUBSET_SEED = 20_240_601  # one fixed draw: every run and seed asking for N images trains on the same N


def training_subset(data: ImageData, count: int, dataset: str) -> ImageData:
    """The first ``count`` images (0: all) of one fixed permutation of the training split, with their labels:
    the small-data regime (``--set train_images=1000``) that augmentation is for, the same images every run."""
    total = data.images.shape[0]
    if not count or count == total:
        return data
    if count > total:
        raise DataError(f'train_images={count} asks for more images than dataset "{dataset}" holds ({total:,}).')
    chosen = torch.randperm(total, generator=torch.Generator().manual_seed(SUBSET_SEED))[:count].sort().values
    labels = data.labels[chosen] if data.labels is not None else None
    # a paired source goes with its image; an unpaired second domain keeps all of its own
    fields = {name: images[chosen] if name in PAIRED_FIELDS else images for name, images in data.fields.items()}
    return dataclasses.replace(data, images=data.images[chosen], labels=labels, fields=fields,
                               source=f"{data.source} ({count:,} of its {total:,} images)")
