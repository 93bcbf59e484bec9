"""Drop-in layers that compute a standard layer's exact function as one matrix product.

A DCGAN's discriminator ends with a convolution whose kernel covers its whole
4x4 input (one logit per image), and its generator starts with a transposed
convolution of the 1x1 noise. Both are matrix products in disguise. cuDNN runs
them as convolutions, slowly for shapes like these (on an H100, 35 us forward
and 26 us backward for D's last layer at batch 128, about a tenth of a DCGAN-32
step); cuBLAS or MKL runs them as products in a few microseconds.

The layers subclass ``nn.Conv2d`` and ``nn.ConvTranspose2d``: the same
parameters, initialisation and state-dict keys, so checkpoints and weights move
freely between them and the standard layers. An input of another size takes the
standard path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _channels_last(t: torch.Tensor) -> bool:
    return not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


class WholeInputConv2d(nn.Conv2d):
    """``nn.Conv2d`` without padding, applied to inputs exactly the size of its kernel (output 1x1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        if self.padding != (0, 0):
            raise ValueError("WholeInputConv2d takes no padding: its kernel covers the whole input.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.kernel_size:
            return super().forward(x)
        if _channels_last(x):  # both flattened in (H, W, C) order: views of channels_last tensors
            w, flat = self.weight.permute(0, 2, 3, 1), x.permute(0, 2, 3, 1)
        else:  # (C, H, W) order, so the gradient reaching x keeps x's memory format
            w, flat = self.weight, x
        out = F.linear(flat.reshape(x.shape[0], -1), w.reshape(self.out_channels, -1), self.bias)
        return out.view(x.shape[0], self.out_channels, 1, 1)


class PointInputConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` without padding, applied to 1x1 inputs (the noise, for a DCGAN's first layer)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias=bias)
        if self.padding != (0, 0):
            raise ValueError("PointInputConvTranspose2d takes no padding: it spreads each input over its kernel.")

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (1, 1) or output_size is not None:
            return super().forward(x, output_size)
        kh, kw = self.kernel_size
        z = x.reshape(x.shape[0], -1)
        if not _channels_last(self.weight):  # (C, H, W) order: the output is contiguous as it comes
            out = (z @ self.weight.reshape(self.in_channels, -1)).view(x.shape[0], self.out_channels, kh, kw)
            return out if self.bias is None else out + self.bias.view(-1, 1, 1)
        # (H, W, C) order: a view of the channels_last weight, and a channels_last output
        out = (z @ self.weight.permute(0, 2, 3, 1).reshape(self.in_channels, -1)).view(x.shape[0], kh, kw, -1)
        if self.bias is not None:
            out = out + self.bias
        return out.permute(0, 3, 1, 2)
