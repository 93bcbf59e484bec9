"""The networks of PyTorch-GAN's pix2pix and CycleGAN, sized for any power-of-two image side.

``UNetGenerator`` and ``PatchDiscriminator`` are pix2pix's (``implementations/pix2pix/models.py``): eight
down-sampling steps at 256 px become log2(side) here, with the same widths (64 doubling to 512), the same
dropout on the 512-wide layers and no normalisation on the first and the innermost layer. ``ResNetGenerator``
and a one-image ``PatchDiscriminator`` are CycleGAN's; ``ReplayBuffer`` is its 50-image history of fakes, kept
as tensors so that it is checkpointed and restored with the rest. ``pixel_fd`` is the Fréchet distance the
CycleGAN plugin reports per domain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def init_normal(m: nn.Module) -> None:
    """PyTorch-GAN's ``weights_init_normal``: N(0, 0.02) convolutions, zero biases."""
    if "Conv" in type(m).__name__:
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _down(cin: int, cout: int, normalize: bool = True, dropout: float = 0.0) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 4, 2, 1, bias=False)]
    if normalize:
        layers.append(nn.InstanceNorm2d(cout))
    layers.append(nn.LeakyReLU(0.2))
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _up(cin: int, cout: int, dropout: float = 0.0) -> nn.Sequential:
    layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.InstanceNorm2d(cout), nn.ReLU(inplace=True)]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: strided convolutions down to 1x1, transposed ones back up, each level's features joined
    to the mirror level's on the way up (the skip connections)."""

    def __init__(self, channels: int, side: int, ngf: int = 64):
        super().__init__()
        depth = int(math.log2(side))
        widths = [ngf * min(2 ** i, 8) for i in range(depth)]
        widest = widths[-1]
        self.downs = nn.ModuleList(
            _down(channels if i == 0 else widths[i - 1], widths[i], normalize=0 < i < depth - 1,
                  dropout=0.5 if widths[i] == widest and i >= 3 else 0.0) for i in range(depth))
        ups, cin = [], widths[-1]
        for i in range(depth - 2, -1, -1):  # up to the first level's width; the final layer doubles the side
            ups.append(_up(cin, widths[i], dropout=0.5 if widths[i] == widest and i >= 3 else 0.0))
            cin = widths[i] * 2
        self.ups = nn.ModuleList(ups)
        self.final = nn.Sequential(nn.Upsample(scale_factor=2), nn.ZeroPad2d((1, 0, 1, 0)),
                                   nn.Conv2d(cin, channels, 4, padding=1), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = torch.cat((up(x), skip), 1)
        return self.final(x)


class PatchDiscriminator(nn.Module):
    """PatchGAN: four strided blocks, then one logit per patch (side / 16 squared of them). With ``paired``, D
    judges an image together with its source (pix2pix's conditional D), concatenated along the channels."""

    def __init__(self, channels: int, ndf: int = 64, paired: bool = False):
        super().__init__()
        self.paired = paired

        def block(cin, cout, normalize=True):
            return [nn.Conv2d(cin, cout, 4, 2, 1)] + ([nn.InstanceNorm2d(cout)] if normalize else []) + \
                [nn.LeakyReLU(0.2, inplace=True)]

        self.model = nn.Sequential(*block(channels * (2 if paired else 1), ndf, normalize=False),
                                   *block(ndf, ndf * 2), *block(ndf * 2, ndf * 4), *block(ndf * 4, ndf * 8),
                                   nn.ZeroPad2d((1, 0, 1, 0)), nn.Conv2d(ndf * 8, 1, 4, padding=1, bias=not paired))

    def forward(self, image: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(torch.cat((image, source), 1) if self.paired else image)


class ResidualBlock(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(features, features, 3), nn.InstanceNorm2d(features), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(features, features, 3), nn.InstanceNorm2d(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResNetGenerator(nn.Module):
    """CycleGAN's generator: a 7x7 convolution, two strided down-sampling steps, residual blocks, two up-sampling
    steps (nearest, then a 3x3 convolution) and a 7x7 convolution to the image. (PyTorch-GAN pads the 7x7
    convolutions by the channel count, which is 3 for RGB only; here by 3 for any.)"""

    def __init__(self, channels: int, residual_blocks: int = 9, ngf: int = 64):
        super().__init__()
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True)]
        width = ngf
        for _ in range(2):
            layers += [nn.Conv2d(width, width * 2, 3, 2, 1), nn.InstanceNorm2d(width * 2), nn.ReLU(inplace=True)]
            width *= 2
        layers += [ResidualBlock(width) for _ in range(residual_blocks)]
        for _ in range(2):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(width, width // 2, 3, 1, 1), nn.InstanceNorm2d(width // 2),
                       nn.ReLU(inplace=True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class ReplayBuffer(nn.Module):
    """CycleGAN's history of generated images (Shrivastava et al. 2017): D is shown, for each new fake, either
    that fake or, half the time once the buffer is full, an older one it then replaces.

    The images and their count are buffers, so the history travels in checkpoints (``extra_state``) and a
    resumed run shows D the same images; the coin flips come from the run's generator.
    """

    def __init__(self, shape: tuple[int, int, int], size: int = 50):
        super().__init__()
        self.register_buffer("images", torch.zeros(size, *shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def push_and_pop(self, fakes: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """The images D judges in place of ``fakes`` (detached), the buffer updated as PyTorch-GAN's."""
        fakes = fakes.detach()
        size, n = self.images.shape[0], fakes.shape[0]
        coins = torch.rand(n, device=fakes.device, generator=generator).tolist()
        slots = torch.randint(0, size, (n,), device=fakes.device, generator=generator).tolist()
        count, out = int(self.count), []
        for fake, coin, slot in zip(fakes, coins, slots):
            if count < size:
                self.images[count].copy_(fake)
                count += 1
                out.append(fake)
            elif coin > 0.5:
                out.append(self.images[slot].clone())
                self.images[slot].copy_(fake)
            else:
                out.append(fake)
        self.count.fill_(count)
        return torch.stack(out)


def pixel_features(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as 64 numbers each: the grey image average-pooled to 8x8."""
    grey = images.float().mean(1, keepdim=True)
    return F.adaptive_avg_pool2d(grey, 8).flatten(1)


def pixel_fd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Fréchet distance between two sets of images in ``pixel_features`` (a 0-dimensional tensor)."""
    fa, fb = pixel_features(a).double(), pixel_features(b).double()
    mu_a, mu_b = fa.mean(0), fb.mean(0)
    cov_a, cov_b = torch.cov(fa.T), torch.cov(fb.T)
    root_a = _sqrt_psd(cov_a)
    cross = _sqrt_psd(root_a @ cov_b @ root_a)  # the trace of sqrt(cov_a cov_b), symmetrised
    return ((mu_a - mu_b).square().sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * torch.trace(cross)).float()


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T
