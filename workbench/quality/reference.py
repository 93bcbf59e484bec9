"""The real side of every comparison: the held-out split, and the classifier trained on the other one.

The classifier trains on the dataset's training split and its accuracy is
measured on the test split, which is also what generated images are compared
with. A dataset whose two splits are the same images (``fashion-mnist-test``)
is cut in two halves by a fixed permutation instead, so nothing the classifier
trained on is ever used as the reference.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import NamedTuple

import torch

from workbench.base.errors import DataError
from workbench.base.paths import cache_home
from workbench.data.device import resize_uint8
from workbench.data.loading import load_images
from workbench.host.manager import PluginSet
from workbench.quality.classifier import (
    VERSION,
    TrainedClassifier,
    accuracy,
    load_classifier,
    run_batches,
    save_classifier,
    train_classifier,
)
from workbench.rundir.config import RunConfig

MAX_SIDE = 64
SPLIT_SEED = 1234


@dataclass
class Reference:
    """The held-out real images at the classifier's side, their embedding, and the classifier.

    :param images: uint8 (N, C, S, S), passed through the run's image size and back like generated images are.
    :param features: the classifier's penultimate features of ``images`` (N, 128).
    :param logits: the classifier's outputs for ``images`` (N, classes).
    :param notes: sentences for people (which classifier, how the splits were made).
    """

    classifier: TrainedClassifier
    images: torch.Tensor
    labels: torch.Tensor
    features: torch.Tensor
    logits: torch.Tensor
    notes: list[str]

    @property
    def side(self) -> int:
        return self.classifier.net.side

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes


def classifier_side(side: int) -> int:
    """The side the classifier works at: the dataset's own, at most 64, a multiple of 4."""
    return max(4, min(MAX_SIDE, side) // 4 * 4)


def _fingerprint(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _labelled(data, dataset: str, split: str):
    if data.labels is None:
        raise DataError(f'The quality metrics need class labels, and dataset "{dataset}" has none in its {split} split.')
    return data.images, data.labels.long()


class Splits(NamedTuple):
    """The labelled images the classifier trains on and those it is tested and compared with."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    note: str | None


def labelled_splits(config: RunConfig, plugins: PluginSet, image_size: int) -> Splits:
    """The run's dataset as labelled train and held-out test images (halves when both splits are the same)."""
    train = load_images(config, plugins, image_size, "train")
    test = load_images(config, plugins, image_size, "test")
    x_train, y_train = _labelled(train, config.dataset, "train")
    x_test, y_test = _labelled(test, config.dataset, "test")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f'Dataset "{config.dataset}" gives train images of shape {tuple(x_train.shape[1:])} '
                        f"but test images of shape {tuple(x_test.shape[1:])}.")
    note = None
    if x_train.shape == x_test.shape and torch.equal(x_train, x_test):
        order = torch.randperm(x_test.shape[0], generator=torch.Generator().manual_seed(SPLIT_SEED))
        half = x_test.shape[0] // 2
        x_train, y_train = x_test[order[:half]], y_test[order[:half]]
        x_test, y_test = x_test[order[half:]], y_test[order[half:]]
        note = (f'dataset "{config.dataset}" has the same images in both splits: the classifier trains on a fixed '
                f"half ({half:,}) and the metrics compare with the other half ({x_test.shape[0]:,})")
    classes = tuple(train.classes) or tuple(str(c) for c in range(int(max(y_train.max(), y_test.max())) + 1))
    if int(max(y_train.max(), y_test.max())) >= len(classes) or int(min(y_train.min(), y_test.min())) < 0:
        raise DataError(f'Dataset "{config.dataset}" has labels outside its {len(classes)} classes.')
    return Splits(x_train, y_train, x_test, y_test, classes, note)


def domain_classifier(dataset: str, splits: Splits, device: torch.device) -> TrainedClassifier:
    """The dataset's classifier from the cache, or trained now (and cached) when there is none."""
    x_train, y_train, x_test, y_test, classes, _ = splits
    side = classifier_side(x_train.shape[-1])
    fingerprint = _fingerprint(x_train, y_train, x_test, y_test)
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", dataset)
    path = cache_home() / "quality" / f"{safe_name}-{side}px-v{VERSION}-{fingerprint}.safetensors"
    cached = load_classifier(path, device)
    if cached is not None:
        return cached
    started = time.monotonic()
    x_train, x_test = resize_uint8(x_train, side), resize_uint8(x_test, side)
    # The classifier's own randomness must not move the RNG of a run it is evaluating.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        net = train_classifier(x_train, y_train, len(classes), device)
    acc = accuracy(net, x_test, y_test, device)
    trained = TrainedClassifier(net, acc, x_train.shape[0], x_test.shape[0], classes, dataset,
                                time.monotonic() - started, path)
    try:
        save_classifier(path, trained)
    except OSError:
        trained.path = None  # an unwritable cache only costs a retraining next time
    return trained


def load_reference(config: RunConfig, plugins: PluginSet, image_size: int, device: torch.device) -> Reference:
    """Everything on the real side for a run whose generator makes ``image_size`` images of ``config.dataset``."""
    splits = labelled_splits(config, plugins, image_size)
    classifier = domain_classifier(config.dataset, splits, device)
    side, x_test = classifier.net.side, splits.x_test
    # The generator learned images resized to image_size; the reference takes the same way to the classifier.
    images = resize_uint8(resize_uint8(x_test, image_size), side) if x_test.shape[-1] != image_size \
        else resize_uint8(x_test, side)
    features, logits = run_batches(classifier.net, images, device)
    notes = [classifier.describe()] + ([splits.note] if splits.note else [])
    return Reference(classifier, images, splits.y_test, features, logits, notes)
