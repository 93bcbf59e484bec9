"""The core models are the reference architectures, and every model trains with every loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.engine.samples import generate


def build(plugins, name, image_shape, **overrides):
    spec = plugins.registry.model(name)
    hp = {**spec.defaults(), **overrides}
    model = spec.build(hp, image_shape)
    model.make_optimizers()
    model.noise = torch.Generator().manual_seed(0)
    return model


def linear_sizes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def test_mlp_gan_matches_pytorch_gan(plugins):
    model = build(plugins, "mlp_gan", (1, 28, 28))
    assert linear_sizes(model.G) == [(100, 128), (128, 256), (256, 512), (512, 1024), (1024, 784)]
    assert linear_sizes(model.D) == [(784, 512), (512, 256), (256, 1)]
    norms = [m for m in model.G.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.eps for m in norms] == [0.8, 0.8, 0.8]
    assert isinstance(list(model.G.modules())[-1], nn.Tanh)
    assert not any(isinstance(m, nn.Sigmoid) for m in model.D.modules()), "D returns logits"
    opt = model.optimizers["generator"].param_groups[0]
    assert opt["lr"] == 2e-4 and opt["betas"] == (0.5, 0.999)
    assert plugins.registry.model("mlp_gan").defaults()["batch_size"] == 64


@pytest.mark.parametrize("size, channels, g_convs", [(32, 1, 4), (64, 3, 5)])
def test_dcgan_stages_follow_image_size(plugins, size, channels, g_convs):
    model = build(plugins, "dcgan", (channels, size, size), image_size=size)
    convs = [m for m in model.G.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == g_convs
    assert convs[0].in_channels == 100 and convs[-1].out_channels == channels
    assert all(m.bias is None for m in convs)
    z = torch.randn(4, 100)
    images = model.G(z)
    assert images.shape == (4, channels, size, size)
    assert model.D(images).shape == (4,)
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert abs(weights.std().item() - 0.02) < 0.003, "N(0, 0.02) initialisation"
    assert plugins.registry.model("dcgan").defaults()["batch_size"] == 128


def test_aae_matches_pytorch_gan(plugins):
    model = build(plugins, "aae", (1, 32, 32))
    assert model.latent_dim == 10
    assert linear_sizes(model.encoder)[:2] == [(1024, 512), (512, 512)]
    assert linear_sizes(model.decoder) == [(10, 512), (512, 512), (512, 1024)]
    assert linear_sizes(model.D) == [(10, 512), (512, 256), (256, 1)]
    assert plugins.registry.model("aae").defaults()["adv_weight"] == 0.001


@pytest.mark.parametrize("model_name, shape, extra", [
    ("mlp_gan", (1, 28, 28), {}),
    ("dcgan", (1, 32, 32), {"ngf": 8, "ndf": 8}),
    ("aae", (1, 32, 32), {}),
])
@pytest.mark.parametrize("loss_name", ["bce", "lsgan", "hinge", "wgan-gp"])
def test_every_model_trains_with_every_loss(plugins, model_name, shape, extra, loss_name):
    model = build(plugins, model_name, shape, **extra)
    loss = plugins.registry.loss(loss_name).build()
    real = torch.rand(16, *shape) * 2 - 1
    before = {k: v.clone() for k, v in model.networks["discriminator"].state_dict().items()}
    for _ in range(2):
        metrics = model.train_step(real, loss)
    assert set(metrics) >= {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in metrics.values())
    after = model.networks["discriminator"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "D was updated"
    images = generate(model, model.draw_noise(8, torch.device("cpu")))
    assert images.shape == (8, *shape) and images.min() >= -1 and images.max() <= 1


def test_generator_step_leaves_no_gradient_on_discriminator(plugins):
    model = build(plugins, "mlp_gan", (1, 28, 28))
    loss = plugins.registry.loss("bce").build()
    model._update_g(model.G(torch.randn(8, 100)), loss)
    assert all(p.grad is None for p in model.D.parameters())
    assert all(p.requires_grad for p in model.D.parameters()), "D is unfrozen again after G's step"


def test_sampling_does_not_change_batchnorm_statistics(plugins):
    model = build(plugins, "mlp_gan", (1, 28, 28))
    before = {k: v.clone() for k, v in model.G.state_dict().items()}
    generate(model, torch.randn(16, 100))
    assert all(torch.equal(before[k], v) for k, v in model.G.state_dict().items())
