"""Loading a run's dataset: ask the dataset plugin for its images (``engine/data.py`` puts them on the device)."""

from __future__ import annotations

from pathlib import Path

from workbench.config import RunConfig
from workbench.errors import DataError
from workbench.plugins import PluginSet
from workbench.registry import DataRequest, ImageData


def load_images(config: RunConfig, plugins: PluginSet, image_size: int, split: str = "train") -> ImageData:
    """The images (and labels, if any) of the run's dataset.

    The registry's dataset specs are guarded (``workbench.validation.guard``): a plugin that raises or
    returns something other than uint8 (N, C, H, W) is already one sentence naming the plugin.
    """
    spec = plugins.registry.dataset(config.dataset)
    request = DataRequest(root=Path(config.data_root).expanduser() if config.data_root else None,
                          download=config.download, image_size=image_size, split=split)
    data = spec.load(request)
    if data.images.shape[0] == 0:
        raise DataError(f'Dataset "{config.dataset}" holds no images.')
    return data
