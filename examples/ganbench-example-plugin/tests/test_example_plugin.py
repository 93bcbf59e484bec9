"""The example plugin's own tests: each plugin is checked by ganbench's test kit in one line."""

from __future__ import annotations

import pytest
import torch
from ganbench_example.cifar10 import SPLIT_FILES

from workbench.api import check_dataset_plugin, check_loss_plugin, check_model_plugin, shape_images


def test_wgan():
    check_model_plugin("wgan", hyperparams={"hidden": 16, "n_critic": 2})


@pytest.mark.parametrize("loss", ["wasserstein", "r1"])
def test_losses(loss):
    check_loss_plugin(loss)


@pytest.fixture
def cifar_root(tmp_path):
    """A folder with the CIFAR-10 binary version's files, 12 real-format records each."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for seed, name in enumerate(SPLIT_FILES["train"] + SPLIT_FILES["test"]):
        images, labels = shape_images(12, 3, 32, seed=seed)
        records = torch.cat([labels.to(torch.uint8).view(-1, 1), images.flatten(1)], dim=1)
        (folder / name).write_bytes(records.numpy().tobytes())
    return tmp_path


def test_cifar10(cifar_root):
    check_dataset_plugin("cifar10", data_root=cifar_root)
