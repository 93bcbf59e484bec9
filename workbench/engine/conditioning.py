"""Class labels for conditional models: what ``build`` learns of the classes, the checks before a run,
the class-per-row grid layout and naming a class on the command line."""

from __future__ import annotations

import math

import torch

from workbench.base.errors import ConfigError, DataError
from workbench.data.device import DeviceImages
from workbench.engine.samples import generate
from workbench.host.registry import DataInfo, ImageData
from workbench.modeling.model import needs_labels

MAX_GRID_ROWS = 20  # more rows than this make a grid nobody can read: the first 20 classes are shown


def data_info(data: ImageData, channels: int, size: int) -> DataInfo:
    """The ``DataInfo`` handed to ``build``: the image shape and the dataset's classes.

    A labelled dataset without class names gets "0", "1", ... up to its largest label.
    """
    if data.labels is None or data.labels.numel() == 0:
        return DataInfo(channels, size)
    classes = tuple(data.classes)
    if not classes:
        classes = tuple(str(i) for i in range(int(data.labels.max()) + 1))
    return DataInfo(channels, size, classes)


def check_labels_fit(model, info: DataInfo, data: ImageData, model_name: str, dataset: str) -> None:
    """Refuse, in one sentence, a conditional model with an unlabelled dataset or another class count, and a
    model asking for a batch field the engine does not provide."""
    unknown = [name for name in getattr(model, "batch_fields", ()) if name not in DeviceImages.FIELDS]
    if unknown:
        raise ConfigError(f'Model "{model_name}" asks for the batch field "{unknown[0]}"; the engine provides '
                          f'{", ".join(DeviceImages.FIELDS)}.')
    if not needs_labels(model):
        return
    if data.labels is None:
        raise ConfigError(f'Model "{model_name}" is conditional (it trains on class labels), but dataset "{dataset}" '
                          f'has no labels; use a labelled dataset (for "folder", one sub-folder per class).')
    low, high = int(data.labels.min()), int(data.labels.max())
    if low < 0 or high >= info.n_classes:
        raise DataError(f'Dataset "{dataset}" has labels from {low} to {high} for {info.n_classes} class names.')
    if model.n_classes != info.n_classes:
        raise ConfigError(f'Model "{model_name}" was built for {model.n_classes} classes, but dataset "{dataset}" '
                          f'has {info.n_classes}.')


def balanced_labels(n: int, n_classes: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``n`` labels cycling through every class (0, 1, ..., n_classes - 1, 0, 1, ...)."""
    return torch.arange(n, device=device) % n_classes


def sample_labels(model, n: int, device: torch.device | str) -> torch.Tensor | None:
    """Balanced labels for ``n`` samples of a conditional model (for the quality metrics); None for another model."""
    return balanced_labels(n, model.n_classes, device) if needs_labels(model) else None


def class_grid(noise: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The layout of a conditional model's grid: one row per class (at most ``MAX_GRID_ROWS``), the same noise
    down each column; ``int(sqrt(len(noise)))`` columns. Returns (noise, labels, images per row)."""
    rows = min(n_classes, MAX_GRID_ROWS)
    columns = max(1, math.isqrt(noise.shape[0]))
    z = noise[:columns].repeat(rows, 1)
    labels = torch.arange(rows, device=noise.device).repeat_interleave(columns)
    return z, labels, columns


def grid_rows_note(classes: tuple[str, ...]) -> str | None:
    """The sentence saying that a grid shows only the first ``MAX_GRID_ROWS`` classes, or None."""
    if len(classes) <= MAX_GRID_ROWS:
        return None
    return f"The sample grids show the first {MAX_GRID_ROWS} of the {len(classes)} classes, one per row."


def resolve_class(text: str, classes: tuple[str, ...]) -> int:
    """A class named by its name (case-insensitive) or its index; ConfigError naming the classes otherwise."""
    by_name = {name.lower(): i for i, name in enumerate(classes)}
    if text.strip().lower() in by_name:
        return by_name[text.strip().lower()]
    if text.strip().isdigit() and int(text) < len(classes):
        return int(text)
    known = ", ".join(f"{i} {name}" for i, name in enumerate(classes))
    raise ConfigError(f'No class "{text}" in this model; its classes are: {known}.')


def draw_grid(model, noise: torch.Tensor) -> tuple[torch.Tensor, int | None]:
    """The fixed-noise sample grid's images and how many a row: a conditional model's has one row per class
    (the same noise down each column); an unconditional model's is square (None)."""
    if not needs_labels(model):
        return generate(model, noise), None
    z, labels, per_row = class_grid(noise, model.n_classes)
    return generate(model, z, labels), per_row


def grid_rows(model, classes: tuple[str, ...]) -> list[str]:
    """The class of each row of the sample grids, top to bottom (a conditional model's; else empty)."""
    return list(classes[:MAX_GRID_ROWS]) if needs_labels(model) else []
