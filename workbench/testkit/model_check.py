"""``check_model_plugin``: train a model plugin briefly, round-trip its checkpoint, resume it, sample from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from workbench.modeling.model import needs_labels
from workbench.testkit.kit_plugin import KIT_CLASSES, KIT_DATASET, KitPlugin
from workbench.testkit.labels_check import check_labels_path
from workbench.testkit.report import KitReport, PluginCheckError, blame
from workbench.testkit.running import check_folder, kit_config, load_with_kit, report_of, resume, train


def check_model_plugin(name: str, *, hyperparams: dict[str, Any] | None = None, loss: str | None = None,
                       channels: int = 1, device: str = "cpu", exact_resume: bool = True,
                       workdir: Path | None = None, modules: list | None = None) -> KitReport:
    """Train model ``name`` for two steps on tiny data, round-trip its checkpoint, resume it, sample from it.

    :param hyperparams: values to use instead of the model's defaults (make it small: ``{"ngf": 8}``).
    :param loss: the loss to train with (default: the model's).
    :param channels: 1 for grey or 3 for RGB images, whichever the model is made for.
    :param device: ``cpu`` (default), ``cuda`` ...
    :param exact_resume: check that 2 steps + resume + 1 step equals 3 straight steps; turn off for a
        generator with dropout (drawing the end-of-run sample moves the random stream).
    :param workdir: a folder to keep the run directories in (default: a temporary folder, removed afterwards).
    :param modules: plugin modules to load besides the installed ones (to check one before packaging it).
    """
    with check_folder(workdir) as root:
        kit = KitPlugin(channels)
        plugins = load_with_kit(kit, "models", name, modules)
        config = kit_config(plugins, kit, name, KIT_DATASET, loss, hyperparams, device, root, "check-model")
        run = train(plugins, config)
        report = report_of(run)
        checkpoint = run.dir.latest
        _check_round_trip(plugins, run, checkpoint, device)
        if needs_labels(run.model):  # a conditional model: its labels path too (workbench/testkit/labels_check.py)
            blame(check_labels_path, plugins, run, device, KIT_CLASSES)
        resumed = resume(plugins, run.dir.path, config.steps + 1)
        if exact_resume:
            straight_config = kit_config(plugins, kit, name, KIT_DATASET, loss, hyperparams, device, root,
                                         "check-model-straight", steps=config.steps + 1)
            _compare_weights(train(plugins, straight_config).model, resumed.model,
                             f"{config.steps + 1} steps without a break",
                             f"{config.steps} steps, a resume from the checkpoint and 1 more step",
                             "keep every piece of training state in a network (a buffer) or an optimizer")
        report.checkpoint = resumed.dir.latest
        report.sample = _check_sample(plugins, resumed, root / "sample.png", device)
        return report


def _check_round_trip(plugins, run, checkpoint: Path, device: str) -> None:
    from workbench.engine.inference import load_model
    from workbench.engine.samples import generate

    loaded, _ = blame(load_model, checkpoint, plugins, device)
    _compare_weights(run.model, loaded, "the trained model", f"the one reloaded from {checkpoint.name}",
                     "every network must be in GanModel.networks")
    z = torch.randn(4, run.model.latent_dim, generator=torch.Generator().manual_seed(7)).to(run.device)
    if not torch.allclose(generate(run.model, z), generate(loaded, z.to(_device_of(loaded))).to(run.device),
                          atol=1e-5):
        raise PluginCheckError(f"{run.config.model}: the reloaded model draws other images from the same noise "
                               f"than the trained one; its generate() must depend on its networks only.")


def _device_of(model) -> torch.device:
    for net in model.networks.values():
        for tensor in list(net.parameters()) + list(net.buffers()):
            return tensor.device
    return torch.device("cpu")


def _compare_weights(first, second, first_label: str, second_label: str, hint: str) -> None:
    if set(first.networks) != set(second.networks):
        raise PluginCheckError(f"{first_label} has the networks {sorted(first.networks)}, {second_label} has "
                               f"{sorted(second.networks)}.")
    for net_name, net in first.networks.items():
        other = second.networks[net_name].state_dict()
        for key, value in net.state_dict().items():
            theirs = other[key].to(value.device)
            same = torch.equal(value, theirs) if not value.is_floating_point() else \
                torch.allclose(value, theirs, rtol=1e-4, atol=1e-6)
            if not same:
                raise PluginCheckError(f"{net_name}.{key} differs between {first_label} and {second_label}; {hint}.")


def _check_sample(plugins, run, path: Path, device: str) -> Path:
    from PIL import Image

    from workbench.engine.inference import sample_images
    from workbench.engine.samples import save_grid

    images = blame(sample_images, run.dir.latest, plugins, 4, 0, device)
    if tuple(images.shape) != (4, *run.image_shape) or images.min() < -1 or images.max() > 1:
        raise PluginCheckError(f"Sampling {run.dir.latest.name} gave images of shape {tuple(images.shape)} "
                               f"from {images.min():.3g} to {images.max():.3g}; expected (4, *{run.image_shape}) "
                               f"in [-1, 1].")
    save_grid(images, path)
    with Image.open(path) as grid:
        if grid.format != "PNG" or min(grid.size) < run.image_shape[1]:
            raise PluginCheckError(f"The sample grid {path} is a {grid.format} image of {grid.size}.")
    return path
