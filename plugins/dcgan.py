"""DCGAN (Radford et al. 2016) as written in the PyTorch DCGAN tutorial, D returning logits.

The number of up/down-sampling stages follows the image size: 64 gives the
tutorial's five-layer networks, 32 drops one stage (for MNIST-like data).
"""

from __future__ import annotations

from torch import nn

from workbench.api import (HyperParam, ModelSpec, PointInputConvTranspose2d, TwoNetworkGAN, WholeInputConv2d,
                           hookimpl, training_params)


def _stages(image_size: int) -> int:
    return {32: 3, 64: 4}[image_size]  # stride-2 layers between 4x4 and the image size


class Generator(nn.Module):
    def __init__(self, nz: int, ngf: int, nc: int, image_size: int):
        super().__init__()
        n = _stages(image_size)
        mult = 2 ** (n - 1)
        layers: list[nn.Module] = [PointInputConvTranspose2d(nz, ngf * mult, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ngf * mult), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ngf * mult // 2), nn.ReLU(True)]
            mult //= 2
        layers += [nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z):
        return self.main(z.view(z.shape[0], z.shape[1], 1, 1))


class Discriminator(nn.Module):
    def __init__(self, ndf: int, nc: int, image_size: int):
        super().__init__()
        n = _stages(image_size)
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        mult = 1
        for _ in range(n - 1):
            layers += [nn.Conv2d(ndf * mult, ndf * mult * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ndf * mult * 2), nn.LeakyReLU(0.2, inplace=True)]
            mult *= 2
        layers.append(WholeInputConv2d(ndf * mult, 1, 4, 1, 0, bias=False))  # logits: the loss applies the sigmoid
        self.main = nn.Sequential(*layers)

    def forward(self, img):
        return self.main(img).view(-1)


def weights_init(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales, as in the tutorial."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


def build(hp: dict, img_shape: tuple[int, int, int]) -> TwoNetworkGAN:
    nc = img_shape[0]
    G = Generator(hp["latent_dim"], hp["ngf"], nc, hp["image_size"])
    D = Discriminator(hp["ndf"], nc, hp["image_size"])
    G.apply(weights_init)
    D.apply(weights_init)
    model = TwoNetworkGAN(G, D, hp, latent_dim=hp["latent_dim"], d_first=True, d_scale=1.0)
    model.channels_last = True
    return model


SPEC = ModelSpec(
    name="dcgan",
    description="DCGAN of the PyTorch tutorial: transposed-conv G, strided-conv D, 32 or 64 px",
    build=build,
    hyperparams=training_params(batch_size=128, lr=2e-4, epochs=5) + (
        HyperParam("latent_dim", "int", 100, "size of the noise vector (nz)", min=1, max=4096),
        HyperParam("ngf", "int", 64, "generator feature maps", min=1, max=1024),
        HyperParam("ndf", "int", 64, "discriminator feature maps", min=1, max=1024),
        HyperParam("image_size", "int", 32, "side of the square images", choices=(32, 64)),
    ),
    dataset="fashion-mnist-test",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
