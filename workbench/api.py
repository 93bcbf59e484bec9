"""Everything a plugin author imports, from one place.

::

    from workbench.api import HyperParam, ModelSpec, TwoNetworkGAN, adam, hookimpl

The hooks a plugin implements are in ``workbench.host.hookspecs`` (mark each with ``hookimpl``); the
types they return, the model classes to subclass, the declared hyper-parameters, the layers, optimizers
and penalties, the data readers and the errors to raise are all re-exported here. The test kit
(``check_model_plugin`` ...) is here too; it loads on first use, so a plugin that imports this module
does not pay for the engine.

This module is the contract kept stable between releases: the modules behind it may move (see
``workbench._moved`` for the paths that moved in 0.2 and still work).
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench import hookimpl
from workbench.base.errors import CheckpointError, ConfigError, DataError, DiskError, GanbenchError, PluginError
from workbench.base.params import HyperParam, training_params
from workbench.base.paths import cache_home, data_home
from workbench.data.folder import load_folder, load_labelled_folder
from workbench.data.idx import read_idx, write_idx
from workbench.data.translation_folders import load_translation_folder
from workbench.host.registry import DataInfo, DataRequest, DatasetSpec, ImageData, LossSpec, MetricSpec, ModelSpec
from workbench.host.workloads import ClassicData, ClassicScript, Workload
from workbench.modeling.layers import PointInputConvTranspose2d, WholeInputConv2d
from workbench.modeling.model import (AdversarialLoss, ConditionalGAN, GanModel, Metrics, StatePart, TwoNetworkGAN,
                                      needs_labels)
from workbench.modeling.optimizers import FusedAdam, adam
from workbench.modeling.regularization import Penalties, gradient_penalty

# name -> module, imported when first asked for (PEP 562): the test kit and the workloads pull in the engine
_LAZY = {
    "check_model_plugin": "workbench.testing", "check_dataset_plugin": "workbench.testing",
    "check_loss_plugin": "workbench.testing", "shape_images": "workbench.testing",
    "scratch_env": "workbench.testing", "KitReport": "workbench.testing", "PluginCheckError": "workbench.testing",
    "MetricContext": "workbench.quality.context",
    "resize_uint8": "workbench.data.device",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AdversarialLoss", "CheckpointError", "ClassicData", "ClassicScript", "ConditionalGAN", "ConfigError",
    "DataError", "DataInfo", "DataRequest", "DatasetSpec", "DiskError", "FusedAdam", "GanModel", "GanbenchError",
    "HyperParam", "ImageData", "LossSpec", "MetricSpec", "Metrics", "ModelSpec", "Penalties", "PluginError",
    "PointInputConvTranspose2d", "StatePart", "TwoNetworkGAN", "WholeInputConv2d", "Workload", "adam", "cache_home",
    "data_home", "gradient_penalty", "hookimpl", "load_folder", "load_labelled_folder", "load_translation_folder",
    "needs_labels", "read_idx", "training_params", "write_idx", *_LAZY,
]
