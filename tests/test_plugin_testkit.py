"""The authors' test kit: it passes real plugins and fails broken ones with a sentence saying why."""

from __future__ import annotations

import math
from types import ModuleType

import pytest
import torch
from PIL import Image
from torch import nn

from workbench import hookimpl
from workbench.base.params import HyperParam, training_params
from workbench.host.registry import LossSpec, ModelSpec
from workbench.modeling.model import AdversarialLoss, TwoNetworkGAN
from workbench.testing import (
    PluginCheckError,
    check_dataset_plugin,
    check_loss_plugin,
    check_model_plugin,
    shape_images,
)


def test_dcgan_passes_in_rgb(tmp_path):
    report = check_model_plugin("dcgan", hyperparams={"ngf": 4, "ndf": 4}, channels=3, workdir=tmp_path)
    assert [event["step"] for event in report.metrics] == [1, 2]
    assert report.checkpoint.is_file() and report.checkpoint.parent.parent.name == "check-model"
    assert report.run_dir.parent.parent.parent == tmp_path  # WORKDIR/ganbench-check-*/runs/check-model
    with Image.open(report.sample) as grid:
        assert grid.mode == "RGB" and grid.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)  # 2x2 images, 2 px padding
    # the channels_last DCGAN resumed exactly: 2 steps, a resume and 1 more equal 3 straight steps
    assert (report.run_dir.parent / "check-model-straight").is_dir()


def test_a_core_loss_passes():
    report = check_loss_plugin("wgan-gp")
    assert report.metrics[-1]["step"] == 2


def test_a_core_dataset_passes_on_real_idx_files(tiny_mnist):
    report = check_dataset_plugin("mnist", data_root=tiny_mnist, image_size=16)
    assert [event["step"] for event in report.metrics] == [1, 2]


class TinyGenerator(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, 256), nn.Tanh())

    def forward(self, z):
        return self.net(z).view(z.shape[0], 1, 16, 16)


class ForgetfulGAN(TwoNetworkGAN):
    """Halves G's weights on its third call, counted in a plain attribute that no checkpoint holds."""

    calls = 0

    def train_step(self, real, loss):
        metrics = super().train_step(real, loss)
        self.calls += 1
        if self.calls == 3:
            with torch.no_grad():
                for p in self.G.parameters():
                    p.mul_(0.5)
        return metrics


def model_module(model_class=TwoNetworkGAN, extra_hook=None) -> ModuleType:
    def build(hp, shape):
        D = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 1))
        return model_class(TinyGenerator(hp["latent_dim"]), D, hp, latent_dim=hp["latent_dim"])

    @hookimpl
    def ganbench_register_models(register):
        register(ModelSpec("tiny", "a tiny model", build, training_params(8, 2e-4, 1) + (
            HyperParam("latent_dim", "int", 4), HyperParam("image_size", "int", 16))))

    module = ModuleType("tiny_plugin")
    module.ganbench_register_models = ganbench_register_models
    if extra_hook is not None:
        setattr(module, extra_hook.__name__, extra_hook)
    return module


def test_a_well_behaved_local_module_passes():
    report = check_model_plugin("tiny", modules=[model_module()])
    assert report.warnings == []


def test_training_state_outside_the_checkpoint_is_caught():
    with pytest.raises(PluginCheckError) as caught:
        check_model_plugin("tiny", modules=[model_module(ForgetfulGAN)])
    assert str(caught.value).startswith("generator.net.0.weight differs between 3 steps without a break and 2 steps, "
                                        "a resume from the checkpoint and 1 more step; keep every piece of training "
                                        "state in a network (a buffer) or an optimizer")


class UpsideDownLoss(AdversarialLoss):
    """A Wasserstein loss with the critic's sign flipped."""

    def d_loss(self, real_logits, fake_logits):
        return real_logits.mean() - fake_logits.mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()

    def score(self, logits):
        return logits.detach().mean()


def test_a_loss_pointing_the_wrong_way_is_caught():
    @hookimpl
    def ganbench_register_losses(register):
        register(LossSpec("upside-down", "a flipped critic loss", UpsideDownLoss))

    module = ModuleType("flipped")
    module.ganbench_register_losses = ganbench_register_losses
    with pytest.raises(PluginCheckError, match=r'^Loss "upside-down" \(plugin flipped from \(local\)\): d_loss is not '
                                               r"lower when D scores the real images high"):
        check_loss_plugin("upside-down", modules=[module])


def test_an_unknown_model_is_reported_with_the_known_ones():
    with pytest.raises(PluginCheckError) as caught:
        check_model_plugin("mlpgan")
    message = str(caught.value)
    assert message.startswith('No model named "mlpgan" is registered (is the plugin installed, with an entry point '
                              'in the "ganbench" group?). Known: ')
    assert "mlp_gan" in message and "testkit-mlp" not in message


def test_a_model_from_a_plugin_with_problems_fails():
    @hookimpl
    def ganbench_run_ended(run, reason):
        pass

    with pytest.raises(PluginCheckError) as caught:
        check_model_plugin("tiny", modules=[model_module(extra_hook=ganbench_run_ended)])
    assert str(caught.value) == ('Plugin "tiny_plugin" ((local)), which registers "tiny", has problems: implements '
                                 "ganbench_run_ended, which is not a ganbench hook, so it is never called. Did you "
                                 'mean "ganbench_run_end"?')


def test_hyper_parameters_the_model_does_not_declare_are_refused():
    with pytest.raises(PluginCheckError, match=r'^Model "tiny" declares no hyper-parameter widht; it declares '
                                               r"batch_size, lr, b1, b2, epochs, latent_dim, image_size\.$"):
        check_model_plugin("tiny", hyperparams={"widht": 3}, modules=[model_module()])


def test_the_kit_images_are_fixed_by_the_seed_and_hold_both_shapes():
    images, labels = shape_images(32, 3, 20, seed=5)
    again, _ = shape_images(32, 3, 20, seed=5)
    assert images.dtype == torch.uint8 and images.shape == (32, 3, 20, 20)
    assert torch.equal(images, again)
    assert set(labels.tolist()) == {0, 1}
    assert int(images.min()) == 16 and int(images.max()) >= 120
