"""Augmentation of every image D sees: DiffAugment (fixed p) and ADA (p adapted from the sign of D(real)).

Both work on the whole batch on its device, in [-1, 1], differentiably (G's gradient and R1's pass through
them), and draw their randomness from the run's generator, so a resumed run augments exactly as the first
would have. Each op is applied to each image with probability ``p`` (DiffAugment's paper applies every op to
every image: ``augment_p=1``).

- ``DiffAugment`` (Zhao et al. 2020, ``DiffAugment_pytorch.py``): colour (brightness, saturation, contrast),
  translation by up to 1/8 of the side with zero fill, and cutout of a half-side square.
- ``AdaptiveAugment`` (Karras et al. 2020, stylegan2-ada-pytorch ``augment.py``, its ``bgc`` pipeline): x-flip,
  90° rotations, integer translation, isotropic scale, rotation, anisotropic scale and fractional translation as
  one affine warp per image (reflection padding), then brightness, contrast, luma flip, hue and saturation as
  one colour matrix. NVlabs low-pass filters the geometric warp with upfirdn2d kernels, a custom CUDA op; here
  ``grid_sample``'s bilinear filter stands in, which aliases slightly more at large scales. ``p`` starts at
  ``augment_p`` and every ``ada_interval`` steps moves by ``batch * interval / (ada_kimg * 1000)`` towards
  E[sign(D(real))] = ``ada_target``; the statistic is summed over the torchrun ranks first.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _Augment(nn.Module):
    """The parts both share: the probability ``p`` as a buffer (checkpointed), the run's generator."""

    def __init__(self, p: float, generator: torch.Generator | None = None):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p)))
        self.generator = generator  # the run's noise generator; the engine sets it before the first step

    def _rand(self, *shape, like: torch.Tensor) -> torch.Tensor:
        return torch.rand(*shape, device=like.device, generator=self.generator)

    def _randn(self, *shape, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(*shape, device=like.device, generator=self.generator)

    def _chosen(self, n: int, like: torch.Tensor) -> torch.Tensor:
        """(n,) booleans as float: which images this op applies to."""
        return (self._rand(n, like=like) < self.p).to(like.dtype)

    def observe(self, real_logits: torch.Tensor) -> None:
        """The sign of D(real): only ADA adapts to it."""

    def metrics(self) -> dict[str, torch.Tensor]:
        """``aug_p``: the probability in force (a metric of the run)."""
        return {"aug_p": self.p.detach().float().clone()}


class DiffAugment(_Augment):
    """DiffAugment's ``color,translation,cutout`` policy, each op on each image with probability ``p``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = self._colour(x, n)
        x = self._translate(x, n)
        return self._cutout(x, n)

    def _mixed(self, x, changed, n):
        keep = self._chosen(n, x).view(n, 1, 1, 1)
        return x + keep * (changed - x)

    def _colour(self, x, n):
        x = self._mixed(x, x + (self._rand(n, 1, 1, 1, like=x) - 0.5), n)  # brightness
        if x.shape[1] > 1:
            mean = x.mean(dim=1, keepdim=True)
            x = self._mixed(x, (x - mean) * (self._rand(n, 1, 1, 1, like=x) * 2) + mean, n)  # saturation
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return self._mixed(x, (x - mean) * (self._rand(n, 1, 1, 1, like=x) + 0.5) + mean, n)  # contrast

    def _translate(self, x, n, ratio: float = 0.125):
        h, w = x.shape[2:]
        sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        keep = self._chosen(n, x).long().view(n, 1, 1)
        dy = (self._rand(n, 1, 1, like=x) * (2 * sh + 1)).long().clamp_(max=2 * sh) - sh
        dx = (self._rand(n, 1, 1, like=x) * (2 * sw + 1)).long().clamp_(max=2 * sw) - sw
        rows = torch.arange(h, device=x.device).view(1, h, 1) + dy * keep
        cols = torch.arange(w, device=x.device).view(1, 1, w) + dx * keep
        padded = F.pad(x, (1, 1, 1, 1))  # a moved-in border reads the zero padding
        rows, cols = (rows + 1).clamp(0, h + 1), (cols + 1).clamp(0, w + 1)
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)

    def _cutout(self, x, n, ratio: float = 0.5):
        h, w = x.shape[2:]
        ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
        top = (self._rand(n, 1, 1, like=x) * (h + 1 - ch % 2)).long() - ch // 2
        left = (self._rand(n, 1, 1, like=x) * (w + 1 - cw % 2)).long() - cw // 2
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
        cut = inside & (self._chosen(n, x).view(n, 1, 1) > 0)
        return x * (~cut).unsqueeze(1).to(x.dtype)


class AdaptiveAugment(_Augment):
    """ADA: the ``bgc`` pipeline at probability ``p``, and ``p`` adapted to hold E[sign(D(real))] at the target."""

    def __init__(self, p: float, target: float, interval: int, kimg: float, batch_size: int,
                 generator: torch.Generator | None = None):
        super().__init__(p, generator)
        self.target, self.step_size = target, batch_size * interval / (kimg * 1000)
        # sum of sign(D(real)) and count since the last adjustment: on the device, read without a sync
        self.register_buffer("signs", torch.zeros(2, dtype=torch.float64))

    def observe(self, real_logits: torch.Tensor) -> None:
        logits = real_logits.detach().float().flatten()
        self.signs += torch.stack([logits.sign().sum(), logits.new_tensor(logits.numel())]).double()

    def adjust(self, reduce=None) -> None:
        """Move p towards the target from the signs seen since the last call (summed over ranks by ``reduce``)."""
        signs = self.signs.clone()
        if reduce is not None:
            reduce(signs)
        rt = signs[0] / signs[1].clamp(min=1)
        moved = self.p + torch.sign(rt - self.target).float() * self.step_size * (signs[1] > 0).float()
        self.p.copy_(moved.clamp(0.0, 1.0))
        self.signs.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        return self._colour(self._geometric(x, n), n)

    def _geometric(self, x, n):
        h, w = x.shape[2:]
        eye = torch.eye(3, device=x.device).expand(n, 3, 3)
        m = eye

        def chosen(p_scale=1.0):
            return (self._rand(n, like=x) < self.p * p_scale).float()

        def then(matrix, on):  # matrix applied to the images chosen by ``on``
            on = on.view(n, 1, 1)
            return m @ (eye + on * (matrix - eye))

        m = then(_scale2d(1 - 2 * torch.floor(self._rand(n, like=x) * 2), torch.ones(n, device=x.device)), chosen())
        m = then(_rotate2d(-math.pi / 2 * torch.floor(self._rand(n, like=x) * 4)), chosen())
        t = (self._rand(n, 2, like=x) * 2 - 1) * 0.125
        tx, ty = torch.round(t[:, 0] * w) / w * 2, torch.round(t[:, 1] * h) / h * 2
        m = then(_translate2d(tx, ty), chosen())
        s = torch.exp2(self._randn(n, like=x) * 0.2)
        m = then(_scale2d(s, s), chosen())
        p_rot = 1 - torch.sqrt((1 - self.p).clamp(min=0))  # rotation on either side of aniso: p overall
        theta = (self._rand(n, like=x) * 2 - 1) * math.pi
        m = m @ (eye + (self._rand(n, like=x) < p_rot).float().view(n, 1, 1) * (_rotate2d(-theta) - eye))
        s = torch.exp2(self._randn(n, like=x) * 0.2)
        m = then(_scale2d(s, 1 / s), chosen())
        theta = (self._rand(n, like=x) * 2 - 1) * math.pi  # drawn anew, as NVlabs does
        m = m @ (eye + (self._rand(n, like=x) < p_rot).float().view(n, 1, 1) * (_rotate2d(-theta) - eye))
        t = self._randn(n, 2, like=x) * 0.125 * 2
        m = then(_translate2d(t[:, 0], t[:, 1]), chosen())
        grid = F.affine_grid(m[:, :2, :].to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def _colour(self, x, n):
        eye = torch.eye(4, device=x.device).expand(n, 4, 4)
        v = torch.tensor([1.0, 1.0, 1.0, 0.0], device=x.device) / math.sqrt(3)
        vv = torch.outer(v, v)
        c = eye

        def then(matrix):
            on = (self._rand(n, like=x) < self.p).float().view(n, 1, 1)
            return (eye + on * (matrix - eye)) @ c

        b = self._randn(n, like=x) * 0.2
        c = then(_translate3d(b))
        k = torch.exp2(self._randn(n, like=x) * 0.5)
        c = then(eye * torch.stack([k, k, k, torch.ones_like(k)], 1).unsqueeze(1))
        flip = torch.floor(self._rand(n, like=x) * 2).view(n, 1, 1)
        c = then(eye - 2 * vv * flip)
        if x.shape[1] == 3:  # hue and saturation need colour
            c = then(_rotate3d(v[:3], (self._rand(n, like=x) * 2 - 1) * math.pi))
            sat = torch.exp2(self._randn(n, like=x)).view(n, 1, 1)
            c = then(vv + (eye - vv) * sat)
            return torch.einsum("nij,njhw->nihw", c[:, :3, :3].to(x.dtype), x) + c[:, :3, 3, None, None].to(x.dtype)
        # grey: NVlabs' reduction of the colour matrix to one channel
        c = c[:, :3, :].mean(dim=1, keepdim=True)
        return x * c[:, :, :3].sum(dim=2).view(n, 1, 1, 1).to(x.dtype) + c[:, :, 3].view(n, 1, 1, 1).to(x.dtype)


def _scale2d(sx, sy):
    z = torch.zeros_like(sx)
    return torch.stack([sx, z, z, z, sy, z, z, z, torch.ones_like(sx)], 1).view(-1, 3, 3)


def _translate2d(tx, ty):
    z, o = torch.zeros_like(tx), torch.ones_like(tx)
    return torch.stack([o, z, tx, z, o, ty, z, z, o], 1).view(-1, 3, 3)


def _rotate2d(theta):
    c, s, z, o = torch.cos(theta), torch.sin(theta), torch.zeros_like(theta), torch.ones_like(theta)
    return torch.stack([c, -s, z, s, c, z, z, z, o], 1).view(-1, 3, 3)


def _translate3d(b):
    z, o = torch.zeros_like(b), torch.ones_like(b)
    return torch.stack([o, z, z, b, z, o, z, b, z, z, o, b, z, z, z, o], 1).view(-1, 4, 4)


def _rotate3d(axis, theta):
    """Rotation by ``theta`` (n,) about the unit ``axis`` (3,), as 4×4 matrices (Rodrigues)."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    cc = 1 - c
    rows = [x * x * cc + c, x * y * cc - z * s, x * z * cc + y * s, 0 * c,
            y * x * cc + z * s, y * y * cc + c, y * z * cc - x * s, 0 * c,
            z * x * cc - y * s, z * y * cc + x * s, z * z * cc + c, 0 * c,
            0 * c, 0 * c, 0 * c, 0 * c + 1]
    return torch.stack(rows, 1).view(-1, 4, 4)


def build_augmenter(kind: str, *, p: float, target: float, interval: int, kimg: float, batch_size: int,
                    generator: torch.Generator | None = None) -> _Augment:
    """The augmentation ``--set augment=kind`` asks for: ``diffaug`` at the fixed ``p``, ``ada`` from ``p``.

    ``ada`` starts from ``augment_p`` only when it was set below its default of 1 (a resumed p comes back
    from the checkpoint); from 0 otherwise, as NVlabs does.
    """
    if kind == "diffaug":
        return DiffAugment(p, generator)
    if kind == "ada":
        return AdaptiveAugment(p if p < 1.0 else 0.0, target, interval, kimg, batch_size, generator)
    raise ValueError(f"unknown augmentation {kind!r}")
