"""Validation with blame: a plugin that breaks its contract is named, with what it returned, before a run starts."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench import hookimpl
from workbench.base.errors import DataError, PluginError
from workbench.base.params import HyperParam, training_params
from workbench.data.device import DeviceImages
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins
from workbench.host.registry import DatasetSpec, ImageData, LossSpec, ModelSpec
from workbench.host.validation import check_before_training
from workbench.modeling.model import AdversarialLoss, GanModel, TwoNetworkGAN

SHAPE = (1, 28, 28)
WHO = "(plugin broken from (local))"


class FlatGenerator(nn.Module):
    """Forgets to reshape: (N, 784) instead of (N, 1, 28, 28)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, math.prod(SHAPE)), nn.Tanh())

    def forward(self, z):
        return self.net(z)


class LoudGenerator(FlatGenerator):
    """Has no tanh at the end: values far outside [-1, 1]."""

    def forward(self, z):
        return 50 * self.net[0](z).view(z.shape[0], *SHAPE)


class GoodGenerator(FlatGenerator):
    def forward(self, z):
        return self.net(z).view(z.shape[0], *SHAPE)


def discriminator() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), 1))


class FloatMetricsGAN(TwoNetworkGAN):
    """Calls .item() on its metrics."""

    def train_step(self, real, loss):
        return {k: v.item() for k, v in super().train_step(real, loss).items()}


class ForgetfulGAN(TwoNetworkGAN):
    """Returns only two of the four metrics."""

    def train_step(self, real, loss):
        metrics = super().train_step(real, loss)
        return {"d_loss": metrics["d_loss"], "g_loss": metrics["g_loss"]}


class BoastfulGAN(TwoNetworkGAN):
    """Declares a metric it never returns, and one that takes an event field's name."""

    @property
    def metric_keys(self):
        return ("sharpness",)


class ClashingGAN(TwoNetworkGAN):
    metric_keys = ("kimg",)


def gan(generator_class=GoodGenerator, model_class=TwoNetworkGAN):
    def build(hp, image_shape):
        return model_class(generator_class(hp["latent_dim"]), discriminator(), hp, latent_dim=hp["latent_dim"])

    return build


class PerSampleLoss(AdversarialLoss):
    """Forgets the mean: one loss per image."""

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(-real_logits) + F.softplus(fake_logits)

    def g_loss(self, fake_logits):
        return F.softplus(-fake_logits)


class LogZeroLoss(AdversarialLoss):
    def d_loss(self, real_logits, fake_logits):
        return (real_logits * 0).sum() + torch.log(torch.zeros(()))

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


class NumberLoss(AdversarialLoss):
    def d_loss(self, real_logits, fake_logits):
        return float((fake_logits.mean() - real_logits.mean()).detach())

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


class DetachedLoss(AdversarialLoss):
    def d_loss(self, real_logits, fake_logits):
        return (fake_logits.mean() - real_logits.mean()).detach()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


def shipped_images(request):
    from plugins.mnist import load_shipped

    data = load_shipped(request)
    return ImageData(data.images[:64], data.labels[:64], source="first 64 shipped images")


def broken_plugin(build=gan(), loss=AdversarialLoss, load=shipped_images) -> ModuleType:
    """One plugin registering model "m", loss "l" and dataset "d"; pass the part to break."""
    module = ModuleType("broken")

    @hookimpl
    def ganbench_register_models(register):
        register(ModelSpec("m", "a model under test", build, training_params(8, 2e-4, 1) + (
            HyperParam("latent_dim", "int", 4),), dataset="d", loss="l"))

    @hookimpl
    def ganbench_register_losses(register):
        register(LossSpec("l", "a loss under test", loss))

    @hookimpl
    def ganbench_register_datasets(register):
        register(DatasetSpec("d", "a dataset under test", load))

    module.ganbench_register_models = ganbench_register_models
    module.ganbench_register_losses = ganbench_register_losses
    module.ganbench_register_datasets = ganbench_register_datasets
    return module


def start(tmp_path, module, loss="l"):
    plugins = load_plugins([module])
    assert next(p for p in plugins.plugins if p.name == "broken").error is None
    config = build_config(plugins.registry, "m", loss=loss, steps=1000, device="cpu", runs_dir=str(tmp_path / "runs"))
    return prepare_run(config, plugins)


def refused(tmp_path, module, loss="l", error=PluginError) -> str:
    with pytest.raises(error) as caught:
        start(tmp_path, module, loss)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "no run directory is left"
    return str(caught.value)


def test_a_generator_of_the_wrong_shape_is_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=gan(FlatGenerator)), loss="bce")
    assert message == (f'Model "m" {WHO}: generate() returned a float32 tensor of shape (8, 784) on cpu for noise of '
                       f"shape (8, 4); it must return floating-point images of shape (8, 1, 28, 28).")


def test_a_generator_out_of_range_is_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=gan(LoudGenerator)), loss="bce")
    assert message.startswith(f'Model "m" {WHO}: generate() returned values from -')
    assert message.endswith("images must lie in [-1, 1] (end the generator with tanh).")


def test_a_build_returning_something_else_is_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=lambda hp, shape: {"G": nn.Linear(1, 1)}), loss="bce")
    assert message == (f'Model "m" {WHO}: build() returned a dict; it must return a workbench.modeling.model.GanModel '
                       f"(for example a TwoNetworkGAN).")


def test_metrics_read_with_item_are_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=gan(model_class=FloatMetricsGAN)), loss="bce")
    assert message == (f'Model "m" {WHO}: train_step() returned d_loss as a float; it must be a scalar tensor '
                       f"(shape ()) left on the device, not a number from .item().")


def test_missing_metrics_are_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=gan(model_class=ForgetfulGAN)), loss="bce")
    assert message == (f'Model "m" {WHO}: train_step() returned the keys d_loss, g_loss; d_real, d_fake are missing '
                       f"(the four, and what metric_keys declares).")


def test_a_declared_metric_that_is_not_returned_or_clashes_is_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(build=gan(model_class=BoastfulGAN)), loss="bce")
    assert message.endswith("; sharpness is missing (the four, and what metric_keys declares).")
    message = refused(tmp_path, broken_plugin(build=gan(model_class=ClashingGAN)), loss="bce")
    assert message == (f'Model "m" {WHO}: metric_keys names kimg, which the metrics events already use for '
                       f"something else; choose other names.")


@pytest.mark.parametrize("loss_class, expected", [
    (PerSampleLoss, "d_loss(real_logits, fake_logits) returned a float32 tensor of shape (8,) on cpu; it must "
                    "return a scalar tensor (shape ())."),
    (LogZeroLoss, "d_loss(real_logits, fake_logits) returned -inf for ordinary logits; it must be finite."),
    (NumberLoss, "d_loss(real_logits, fake_logits) returned a float; it must return a scalar tensor (shape ())."),
    (DetachedLoss, "d_loss(real_logits, fake_logits) returned a tensor that does not depend on the logits (no "
                   "gradient flows back); do not detach it or call .item()."),
])
def test_a_loss_breaking_its_contract_is_blamed(tmp_path, loss_class, expected):
    message = refused(tmp_path, broken_plugin(loss=loss_class))
    assert message == f'Loss "l" {WHO}: {expected}'


def test_a_loss_build_returning_something_else_is_blamed(tmp_path):
    message = refused(tmp_path, broken_plugin(loss=lambda: torch.nn.BCEWithLogitsLoss()))
    assert message == (f'Loss "l" {WHO}: build() returned a BCEWithLogitsLoss, which has no d_loss, g_loss, penalty, '
                       f"score; subclass workbench.modeling.model.AdversarialLoss.")


def test_float_images_from_a_dataset_are_blamed(tmp_path):
    def load(request):
        return ImageData(torch.rand(64, 1, 28, 28))

    message = refused(tmp_path, broken_plugin(load=load))
    assert message == (f'Dataset "d" {WHO}: load() returned images as a float32 tensor of shape (64, 1, 28, 28) on '
                       f"cpu; they must be a torch.uint8 tensor of shape (N, C, H, W) with values 0..255.")


def test_images_without_a_channel_axis_are_blamed(tmp_path):
    def load(request):
        return ImageData(torch.zeros(64, 28, 28, dtype=torch.uint8))

    message = refused(tmp_path, broken_plugin(load=load))
    assert "load() returned images as a uint8 tensor of shape (64, 28, 28) on cpu" in message


def test_channels_last_images_are_blamed(tmp_path):
    def load(request):
        return ImageData(torch.zeros(64, 28, 28, 3, dtype=torch.uint8))

    message = refused(tmp_path, broken_plugin(load=load))
    assert message == (f'Dataset "d" {WHO}: load() returned images of shape (64, 28, 28, 3); (N, C, H, W) needs '
                       f"C = 1 (grey) or 3 (RGB) and a height and width of at least 1.")


def test_labels_that_do_not_fit_the_images_are_blamed(tmp_path):
    def load(request):
        return ImageData(torch.zeros(64, 1, 28, 28, dtype=torch.uint8), labels=torch.zeros(10))

    message = refused(tmp_path, broken_plugin(load=load))
    assert message == (f'Dataset "d" {WHO}: load() returned labels as a float32 tensor of shape (10,) on cpu for 64 '
                       f"images; they must be None or an integer tensor of shape (64,).")


def test_a_dataset_raising_anything_but_data_error_is_blamed(tmp_path):
    def load(request):
        return {"train": []}["test"]

    message = refused(tmp_path, broken_plugin(load=load))
    assert message == f"Dataset \"d\" {WHO}: load() raised KeyError: 'test'."


def test_a_data_error_is_the_user_s_and_passes_unchanged(tmp_path):
    def load(request):
        raise DataError("Put the files in /data.")

    assert refused(tmp_path, broken_plugin(load=load), error=DataError) == "Put the files in /data."


def test_a_plugin_that_keeps_its_contracts_starts(tmp_path):
    run = start(tmp_path, broken_plugin(), loss="bce")
    assert run.step == 0 and run.dir.path.is_dir()


def test_the_check_leaves_the_model_and_the_random_streams_as_they_were(tmp_path):
    plugins = load_plugins([broken_plugin()])
    config = build_config(plugins.registry, "m", loss="wgan-gp", steps=10, device="cpu")
    torch.manual_seed(3)
    model = plugins.registry.model("m").build(dict(config.hyperparams), SHAPE)
    model.make_optimizers()
    before = {k: v.clone() for k, v in model.G.state_dict().items()} | \
        {f"D.{k}": v.clone() for k, v in model.D.state_dict().items()}
    rng = torch.get_rng_state()
    images = shipped_images(None).images
    check_before_training(plugins.registry, config, model, plugins.registry.loss("wgan-gp").build(),
                          DeviceImages(images, 8, torch.device("cpu"), 0), SHAPE)
    after = model.G.state_dict() | {f"D.{k}": v for k, v in model.D.state_dict().items()}
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(not opt.state for opt in model.optimizers.values()), "the optimizers never stepped"
    assert torch.equal(torch.get_rng_state(), rng)


def test_a_model_that_cannot_be_copied_still_has_its_generator_checked(tmp_path):
    class Uncopyable(TwoNetworkGAN):
        def __deepcopy__(self, memo):
            raise TypeError("holds a file handle")

    def build(hp, shape):
        return Uncopyable(FlatGenerator(hp["latent_dim"]), discriminator(), hp, latent_dim=hp["latent_dim"])

    message = refused(tmp_path, broken_plugin(build=build), loss="bce")
    assert "generate() returned a float32 tensor of shape (8, 784)" in message
    assert issubclass(Uncopyable, GanModel)
