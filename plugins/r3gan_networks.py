"""R3GAN's generator and discriminator (Huang et al. 2024, brownvc/R3GAN ``R3GAN/Networks.py``) in plain torch ops.

A ResNet of stages, one per resolution from 4×4 up: each residual block is an inverted bottleneck (1×1 conv
to ``expansion`` times the width, a grouped 3×3 conv of ``cardinality`` groups, 1×1 conv back), leaky ReLU
(0.2) with a learned bias, no normalisation. Fix-up style initialisation: every conv is MSR-initialised
(std = gain / sqrt(fan_in)) with the activation gain scaled by L^(-1/4) (L: all blocks of the network), and
the last conv of each residual branch starts at zero, so each block starts as the identity. Resampling is the
[1, 3, 3, 1] low-pass filter of R3GAN's ``InterpolativeUpsampler``/``Downsampler`` (bilinear interpolation),
as a fixed depthwise (transposed) convolution where R3GAN calls the custom CUDA op ``upfirdn2d``; its
``bias_act`` op becomes a bias add and ``F.leaky_relu``. Labels enter G as an embedding beside the noise and
D as a projection of its last features on an embedding of the class, as R3GAN does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_GAIN = math.sqrt(2 / (1 + 0.2 ** 2))  # the gain that keeps a leaky ReLU (0.2) variance-preserving


def msr_init(layer: nn.Module, gain: float = 1.0) -> nn.Module:
    """He (MSR) initialisation with ``gain``: N(0, gain / sqrt(fan_in)), biases zero; gain 0 gives zeros."""
    fan_in = layer.weight[0].numel()
    nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(fan_in)) if gain else nn.init.zeros_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return layer


def conv(c_in: int, c_out: int, kernel: int, groups: int = 1, gain: float = 1.0) -> nn.Conv2d:
    return msr_init(nn.Conv2d(c_in, c_out, kernel, padding=(kernel - 1) // 2, groups=groups, bias=False), gain)


class BiasedLeakyReLU(nn.Module):
    """R3GAN's ``BiasedActivation``: a learned per-channel bias, then leaky ReLU (0.2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), 0.2)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))), the last conv zero-initialised."""

    def __init__(self, width: int, cardinality: int, expansion: int, total_blocks: int):
        super().__init__()
        wide = width * expansion
        gain = LEAKY_GAIN * total_blocks ** (-1 / 4)  # R3GAN: L ** (-1 / (2 * layers - 2)) with 3 layers
        self.expand = conv(width, wide, 1, gain=gain)
        self.act1 = BiasedLeakyReLU(wide)
        self.grouped = conv(wide, wide, 3, groups=cardinality, gain=gain)
        self.act2 = BiasedLeakyReLU(wide)
        self.project = conv(wide, width, 1, gain=0.0)

    def forward(self, x):
        return x + self.project(self.act2(self.grouped(self.act1(self.expand(x)))))


def _lowpass() -> torch.Tensor:
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])  # [1, 2, 1] convolved with [1, 1], as R3GAN builds it
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum()


class Resample(nn.Module):
    """×2 up (transposed conv, gain 4) or ×2 down (strided conv) with the [1, 3, 3, 1] filter, zero padding:
    upfirdn2d's ``upsample2d``/``downsample2d`` of R3GAN, as one depthwise convolution per channel."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up
        self.register_buffer("kernel", _lowpass() * (4.0 if up else 1.0), persistent=False)

    def forward(self, x):
        weight = self.kernel.to(x.dtype).expand(x.shape[1], 1, 4, 4)
        if self.up:
            return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=x.shape[1])
        return F.conv2d(x, weight, stride=2, padding=1, groups=x.shape[1])


def stage_plan(image_size: int, width: int, cardinality: int) -> list[tuple[int, int]]:
    """(width, cardinality) of each stage from 4×4 to ``image_size``: R3GAN's FFHQ-256 plan, which keeps the
    low-resolution width up to 32×32 and halves width and groups with each stage above it."""
    stages = int(math.log2(image_size)) - 1
    return [(max(width >> max(0, i - 3), 1), max(cardinality >> max(0, i - 3), 1)) for i in range(stages)]


class Generator(nn.Module):
    """G(z, labels): a learned 4×4 basis modulated by a linear map of [z, embedding(labels)], then the stages."""

    def __init__(self, latent_dim: int, channels: int, plan: list[tuple[int, int]], blocks: int, expansion: int,
                 n_classes: int = 0):
        super().__init__()
        total = blocks * len(plan)
        embed = latent_dim if n_classes else 0  # R3GAN: G's condition embedding as wide as the noise
        first = plan[0][0]
        self.embedding = nn.Embedding(n_classes, embed) if n_classes else None
        if self.embedding is not None:  # R3GAN's bias-free Linear on one-hot labels, MSR-initialised
            nn.init.normal_(self.embedding.weight, 0.0, 1 / math.sqrt(n_classes))
        self.basis = nn.Parameter(torch.randn(first, 4, 4))
        self.basis_scale = msr_init(nn.Linear(latent_dim + embed, first, bias=False))
        layers: list[nn.Module] = []
        previous = first
        for i, (width, groups) in enumerate(plan):
            if i:
                layers += [conv(previous, width, 1)] if width != previous else []
                layers.append(Resample(up=True))
            layers += [ResidualBlock(width, groups, expansion, total) for _ in range(blocks)]
            previous = width
        self.stages = nn.Sequential(*layers)
        self.to_image = conv(previous, channels, 1)

    def forward(self, z, labels=None):
        if self.embedding is not None:
            z = torch.cat([z, self.embedding(labels).to(z.dtype)], dim=1)
        x = self.basis.view(1, -1, 4, 4).to(z.dtype) * self.basis_scale(z).view(z.shape[0], -1, 1, 1)
        return self.to_image(self.stages(x))


class Discriminator(nn.Module):
    """D(images, labels): the mirror of G; the 4×4 features go through a depthwise 4×4 conv and a linear map
    to one logit, or (with labels) to an embedding whose dot product with the class embedding is the logit."""

    def __init__(self, channels: int, plan: list[tuple[int, int]], blocks: int, expansion: int, n_classes: int = 0):
        super().__init__()
        plan = plan[::-1]
        total = blocks * len(plan)
        embed = plan[-1][0] if n_classes else 0  # R3GAN: D's embedding as wide as its 4×4 stage
        self.from_image = conv(channels, plan[0][0], 1)
        layers: list[nn.Module] = []
        for i, (width, groups) in enumerate(plan):
            layers += [ResidualBlock(width, groups, expansion, total) for _ in range(blocks)]
            if i + 1 < len(plan):
                layers.append(Resample(up=False))
                nxt = plan[i + 1][0]
                layers += [conv(width, nxt, 1)] if nxt != width else []
        self.stages = nn.Sequential(*layers)
        last = plan[-1][0]
        self.basis = msr_init(nn.Conv2d(last, last, 4, groups=last, bias=False))
        self.head = msr_init(nn.Linear(last, embed or 1, bias=False))
        self.embedding = nn.Embedding(n_classes, embed) if n_classes else None
        if self.embedding is not None:  # gain 1/sqrt(embed) on a bias-free Linear of one-hot labels
            nn.init.normal_(self.embedding.weight, 0.0, 1 / math.sqrt(embed * n_classes))

    def forward(self, images, labels=None):
        x = self.stages(self.from_image(images))
        x = self.head(self.basis(x).flatten(1))
        if self.embedding is not None:
            x = (x * self.embedding(labels).to(x.dtype)).sum(dim=1)
        return x.view(x.shape[0])
