"""Using a finished checkpoint: rebuild its model from the metadata and draw samples. No dataset needed."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.engine import checkpoint as ckpt
from workbench.engine.devices import pick_device
from workbench.engine.memory import check_fits
from workbench.engine.rundir import resolve_checkpoint
from workbench.engine.samples import generate
from workbench.errors import CheckpointError
from workbench.plugins import PluginSet


def load_model(path: Path, plugins: PluginSet, device: str = "auto"):
    """Rebuild the model a checkpoint describes, with its weights, on ``device``. Returns (model, checkpoint)."""
    checkpoint = ckpt.load_checkpoint(resolve_checkpoint(path))
    meta = checkpoint.meta
    spec = plugins.registry.model(meta["model"])
    ckpt.check_against_model(meta, spec, checkpoint.path)
    target = pick_device(device)
    image_shape = tuple(int(v) for v in meta["image_shape"])
    _check_size_first(checkpoint, spec, image_shape, target)
    try:
        model = spec.build(dict(meta["hyperparams"]), image_shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path}: its hyper-parameters do not build a {meta['model']} ({exc}).") from None
    ckpt.restore_networks(checkpoint, model)
    model.to(target)
    model.train()
    return model, checkpoint


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


def sample_images(path: Path, plugins: PluginSet, n: int, seed: int = 0, device: str = "auto") -> torch.Tensor:
    """``n`` images in [-1, 1] from the checkpoint at ``path``; the same seed gives the same noise on any device."""
    model, _ = load_model(path, plugins, device)
    target = next(iter(model.networks.values()))
    first = next(target.parameters())
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed)).to(first.device)
    return generate(model, z)
