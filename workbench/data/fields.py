"""The image fields of a translation dataset on the device, taken batch by batch beside the images.

A paired field (``source``) is indexed with the images' own indices. An unpaired field (``domain_b``) has its
own seeded permutation per epoch: the image at position ``p`` of epoch ``e``'s order of the images is batched
with domain B's image at position ``p`` of B's order of that epoch (B's permutations follow one another when
B is the smaller domain). Both orders are functions of (seed, epoch) alone, so a run resumed mid-epoch, or
shared over any number of processes, sees the same pairs of batches.
"""

from __future__ import annotations

import torch

from workbench.host.translation import UNPAIRED_FIELDS

_DOMAIN_SALT = 7_919  # B's permutations are drawn from other seeds than A's


def to_float(images: torch.Tensor, memory_format) -> torch.Tensor:
    """uint8 images as float in [-1, 1], in ``memory_format``: what every batch, field and input is trained on."""
    return images.to(memory_format=memory_format).float().mul_(2 / 255).sub_(1)


class PairedField:
    """A paired image field: ``field[idx]`` is the float images at the images' own indices ``idx``."""

    def __init__(self, images: torch.Tensor, memory_format):
        self.images, self.memory_format = images, memory_format

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return to_float(self.images[idx], self.memory_format)


class UnpairedField:
    """An unpaired image field: ``field[idx]`` is the second domain's images batched with the images at ``idx``
    in the epoch the data's ``batch_indices`` is walking (see the module docstring)."""

    def __init__(self, data, images: torch.Tensor):
        self.data, self.images = data, images
        self._epoch, self._partner = None, None

    def partner(self, epoch: int) -> torch.Tensor:
        """For every index of the images, the index of its partner in the second domain during ``epoch``."""
        if self._epoch != epoch:
            count, other = self.data.images.shape[0], self.images.shape[0]
            orders, drawn, k = [], 0, 0
            while drawn < count:
                gen = torch.Generator().manual_seed((self.data.seed * 1_000_003 + epoch) * _DOMAIN_SALT + k)
                orders.append(torch.randperm(other, generator=gen))
                drawn, k = drawn + other, k + 1
            partner = torch.empty(count, dtype=torch.int64)
            partner[self.data.order(epoch).cpu()] = torch.cat(orders)[:count]
            self._epoch, self._partner = epoch, partner.to(self.images.device)
        return self._partner

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        chosen = self.partner(self.data.epoch_in_use)[idx]
        return to_float(self.images[chosen], self.data.memory_format)


def field_source(data, name: str, images: torch.Tensor):
    """The indexable source of the image field ``name`` of ``data`` (a ``DeviceImages``)."""
    if name in UNPAIRED_FIELDS:
        return UnpairedField(data, images)
    return PairedField(images, data.memory_format)
