"""Using a finished checkpoint: rebuild its model from the metadata and draw samples. No dataset needed.

The checkpoint carries the class names of a conditional model's dataset, so the
classes can be named on another machine without the dataset.
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.base.errors import CheckpointError, ConfigError
from workbench.engine import checkpoint as ckpt
from workbench.engine.conditioning import balanced_labels, class_grid, resolve_class
from workbench.engine.devices import pick_device
from workbench.engine.memory import check_fits
from workbench.engine.samples import generate
from workbench.host.manager import PluginSet
from workbench.host.registry import DataInfo
from workbench.modeling.model import needs_labels
from workbench.rundir.directory import resolve_checkpoint


def load_model(path: Path, plugins: PluginSet, device: str = "auto", raw: bool = False):
    """Rebuild the model a checkpoint describes, with its weights, on ``device``. Returns (model, checkpoint).

    A checkpoint with a generator EMA gives the averaged weights to its generator (what the run's grids
    showed); ``raw`` keeps the trained generator's own.
    """
    checkpoint = ckpt.load_checkpoint(resolve_checkpoint(path))
    meta = checkpoint.meta
    spec = plugins.registry.model(meta["model"])
    ckpt.check_against_model(meta, spec, checkpoint.path)
    target = pick_device(device)
    channels, size = int(meta["image_shape"][0]), int(meta["image_shape"][1])
    info = DataInfo(channels, size, meta.get("classes", ()))
    _check_size_first(checkpoint, spec, info, target)
    try:
        model = spec.build(dict(meta["hyperparams"]), info)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path}: its hyper-parameters do not build a {meta['model']} ({exc}).") from None
    ckpt.restore_networks(checkpoint, model)
    if not raw:
        use_average(checkpoint, model)
    model.to(target)
    model.train()
    return model, checkpoint


def use_average(checkpoint: ckpt.Checkpoint, model) -> bool:
    """Load the checkpoint's EMA of the model's ``ema_network`` into that network; False when it has none."""
    name = getattr(model, "ema_network", None)
    prefix = f"ema/{name}/"
    average = {k[len(prefix):]: v for k, v in checkpoint.tensors.items() if k.startswith(prefix)}
    if name not in model.networks or not average:
        return False
    try:
        model.networks[name].load_state_dict(average)
    except RuntimeError:
        raise CheckpointError(f"{checkpoint.path}: its {name} EMA does not fit the {name}.") from None
    return True


def _check_size_first(checkpoint: ckpt.Checkpoint, spec, image_shape, device: torch.device) -> None:
    """Build the model on the ``meta`` device (no memory) to compare its weights with the checkpoint's and
    to refuse a model too large for the device, before the real build allocates anything."""
    try:
        with torch.device("meta"):
            probe = spec.build(dict(checkpoint.meta["hyperparams"]), image_shape)
    except Exception:  # a plugin whose build needs real tensors: the real build's own checks follow
        return
    ckpt.check_networks(checkpoint, probe)
    weights = sum(p.numel() * p.element_size() for net in probe.networks.values() for p in net.parameters())
    check_fits(weights, f"The model in {checkpoint.path}", device)


def sample_images(path: Path, plugins: PluginSet, n: int, seed: int = 0, device: str = "auto",
                  raw: bool = False) -> torch.Tensor:
    """``n`` images in [-1, 1] from the checkpoint at ``path``; the same seed gives the same noise on any device.
    A conditional model draws the classes in turn (0, 1, ..., 0, 1, ...)."""
    return draw_samples(path, plugins, n, seed, device, raw=raw).images


class Drawn:
    """Images drawn from a checkpoint and how to lay them out: ``per_row`` images per row (None: a square
    grid); ``rows``: the class of each row of a class-per-row grid, the one class drawn, or empty."""

    def __init__(self, images: torch.Tensor, per_row: int | None = None, rows: tuple[str, ...] = ()):
        self.images, self.per_row, self.rows = images, per_row, rows


def draw_samples(path: Path, plugins: PluginSet, n: int, seed: int = 0, device: str = "auto",
                 class_name: str | None = None, by_class: bool = False, raw: bool = False) -> Drawn:
    """``n`` images from the checkpoint at ``path``.

    :param class_name: a conditional model draws only this class (its name or index).
    :param by_class: a conditional model draws one row per class (as the run's grids), ``int(sqrt(n))`` per row.
    :param raw: draw from the trained generator, not its EMA.
    """
    model, checkpoint = load_model(path, plugins, device, raw=raw)
    return draw_from(model, checkpoint, n, seed, class_name, by_class)


def draw_from(model, checkpoint: ckpt.Checkpoint, n: int, seed: int = 0, class_name: str | None = None,
              by_class: bool = False) -> Drawn:
    """``n`` images from a model ``load_model`` rebuilt (see ``draw_samples``)."""
    first = next(next(iter(model.networks.values())).parameters())
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed)).to(first.device)
    if not needs_labels(model):
        if class_name is not None:
            raise ConfigError(f'Model "{checkpoint.meta["model"]}" is not conditional; --class needs a model that '
                              f"draws a chosen class.")
        return Drawn(generate(model, z))
    classes = tuple(checkpoint.meta.get("classes") or (str(i) for i in range(model.n_classes)))
    if class_name is not None:
        label = resolve_class(class_name, classes)
        return Drawn(generate(model, z, torch.full((n,), label, device=z.device)), None, (classes[label],))
    if by_class:
        grid_z, labels, per_row = class_grid(z, model.n_classes)
        return Drawn(generate(model, grid_z, labels), per_row, classes[:int(labels.max()) + 1])
    return Drawn(generate(model, z, balanced_labels(n, model.n_classes, z.device)))
