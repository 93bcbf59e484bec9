"""The classic MLP GAN of PyTorch-GAN's ``gan.py`` (Goodfellow et al. 2014), D returning logits."""

from __future__ import annotations

import math

from torch import nn

from workbench.api import HyperParam, ModelSpec, TwoNetworkGAN, hookimpl, training_params


def _block(n_in: int, n_out: int, normalize: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if normalize:
        layers.append(nn.BatchNorm1d(n_out, 0.8))  # eps=0.8, exactly as gan.py writes it
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Generator(nn.Module):
    def __init__(self, latent_dim: int, img_shape: tuple[int, int, int]):
        super().__init__()
        self.img_shape = img_shape
        self.model = nn.Sequential(
            *_block(latent_dim, 128, normalize=False),
            *_block(128, 256),
            *_block(256, 512),
            *_block(512, 1024),
            nn.Linear(1024, math.prod(img_shape)),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.model(z).view(z.shape[0], *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, img_shape: tuple[int, int, int]):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(math.prod(img_shape), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),  # logits: the loss applies the sigmoid
        )

    def forward(self, img):
        return self.model(img.flatten(1))


def build(hp: dict, img_shape: tuple[int, int, int]) -> TwoNetworkGAN:
    # D is Linear and LeakyReLU only, a pure function of its weights and input: D's pass over the fakes in
    # G's update serves D's update too (bit-identical; workbench.modeling.model.TwoNetworkGAN).
    return TwoNetworkGAN(Generator(hp["latent_dim"], img_shape), Discriminator(img_shape), hp,
                         latent_dim=hp["latent_dim"], d_first=False, d_scale=0.5, reuse_fake_logits=True)


SPEC = ModelSpec(
    name="mlp_gan",
    description="MLP GAN of PyTorch-GAN gan.py: G 100-128-256-512-1024, D 512-256-1",
    build=build,
    hyperparams=training_params(batch_size=64, lr=2e-4, epochs=200) + (
        HyperParam("latent_dim", "int", 100, "size of the noise vector", min=1, max=4096),
        HyperParam("image_size", "int", 28, "side of the square images", min=4, max=256),
    ),
    dataset="fashion-mnist-test",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
