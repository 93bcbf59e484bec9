"""The whole dataset as one uint8 tensor on the training device; batches by index permutation.

No DataLoader and no per-sample Python: an epoch is a permutation, a batch is
an index into the tensor, and the conversion to float in [-1, 1] happens on the
device, as in cifar10-airbench. Labels, when the dataset has them, lie on the
device beside the images and are taken with the same indices (``fields``), and so are the image fields of a
translation dataset (``workbench.data.fields``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.base.errors import ConfigError
from workbench.data.fields import field_source, to_float
from workbench.host.translation import IMAGE_FIELDS

_RESIZE_CHUNK = 4096


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear (antialiased) resize of uint8 (N, C, H, W) to (N, C, size, size), in chunks."""
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8, device=images.device)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start:start + _RESIZE_CHUNK].float()
        resized = F.interpolate(chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out[start:start + _RESIZE_CHUNK] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


class DeviceImages:
    """Batches of float images in [-1, 1] drawn from a uint8 tensor kept on ``device``.

    :param images: uint8 (N, C, H, W).
    :param batch_size: images per step of the whole job; the last incomplete batch of an epoch is dropped.
    :param seed: with the epoch number, fixes each epoch's order, so a resumed run sees the same batches.
    :param labels: int64 (N,) class indices, or None for an unlabelled dataset.
    :param rank: with ``world`` processes training together (torchrun), each takes its own ``batch_size /
        world`` images of every batch of the shared order: the ranks' shares are disjoint, and batch ``b`` of
        an epoch holds the same images however many processes share it (a checkpoint resumes on any number).
    """

    FIELDS = ("labels",) + IMAGE_FIELDS  # the batch fields a model may declare (GanModel.batch_fields)

    def __init__(self, images: torch.Tensor, batch_size: int, device: torch.device, seed: int,
                 channels_last: bool = False, labels: torch.Tensor | None = None, rank: int = 0, world: int = 1,
                 image_fields: dict[str, torch.Tensor] | None = None):
        if images.shape[0] < batch_size:
            raise ConfigError(f"The batch size {batch_size} is larger than the dataset ({images.shape[0]} images).")
        if batch_size % world:
            raise ConfigError(f"The batch size {batch_size} does not divide among {world} processes; "
                              f"choose a multiple of {world}.")
        self.images = images.to(device)
        self.labels = labels.to(device=device, dtype=torch.int64) if labels is not None else None
        self.global_batch_size, self.rank, self.world = batch_size, rank, world
        self.batch_size, self.device, self.seed = batch_size // world, device, seed  # this process's share
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.steps_per_epoch = images.shape[0] // batch_size
        # uint8 image fields (workbench.host.translation): a paired source, or an unpaired second domain
        self.image_fields = {name: t.to(device) for name, t in (image_fields or {}).items()}
        self.epoch_in_use = 0  # the epoch batch_indices walks: an unpaired field's order follows it

    def __len__(self) -> int:
        return self.steps_per_epoch

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch ``epoch``, the same on every machine and every resume."""
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.images.shape[0], generator=gen)
        if self.device.type == "cuda":  # from pinned memory the copy does not wait for the queued steps
            return order.pin_memory().to(self.device, non_blocking=True)
        return order.to(self.device)

    def batch_indices(self, epoch: int, start: int = 0):
        """Yield the index tensors (on the device) of the batches of ``epoch`` from batch index ``start`` on."""
        order, size, share = self.order(epoch), self.global_batch_size, self.batch_size
        self.epoch_in_use = epoch
        for b in range(start, self.steps_per_epoch):
            first = b * size + self.rank * share
            yield order[first:first + share]

    def take(self, idx: torch.Tensor) -> torch.Tensor:
        """The images at ``idx`` as float in [-1, 1], in the model's memory format (all on the device)."""
        return to_float(self.images[idx], self.memory_format)

    def fields(self, idx: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The batch fields ``names`` (a model's ``batch_fields``) at ``idx``, as keywords for ``train_step``."""
        return {name: tensor[idx] for name, tensor in self.field_tensors(names).items()}

    def field_tensors(self, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The whole-dataset tensors behind the batch fields ``names``, checked once (the training step then only
        indexes them). An unconditional model asks for none."""
        out = {}
        for name in names:
            if name not in self.FIELDS:
                raise ConfigError(f'The model asks for the batch field "{name}"; the engine provides '
                                  f'{", ".join(self.FIELDS)}.')
            if name in IMAGE_FIELDS:
                if name not in self.image_fields:
                    raise ConfigError(f'The model trains on the image field "{name}", but the dataset has none.')
                out[name] = field_source(self, name, self.image_fields[name])
                continue
            if self.labels is None:
                raise ConfigError("The model trains on labels, but the dataset has none.")
            out[name] = self.labels
        return out
