"""Image-to-image translation: the image fields a batch may carry, and the checks that a model and a dataset fit.

A dataset for translation returns, besides its ``images``, named image fields in ``ImageData.fields``:

- ``source`` (**paired**, pix2pix): uint8 (N, C, H, W), the input image of each of the ``N`` images, taken
  with the same indices as the images. The images are the targets.
- ``domain_b`` (**unpaired**, CycleGAN): uint8 (M, C, H, W), a second domain of any size ``M``, batched by a
  seeded permutation of its own per epoch. The images are domain A.

A model that trains on one declares it in ``batch_fields`` and is then a *translator*: its
``generate(z, source=images)`` turns input images into output images (``z`` has shape (N, latent_dim),
(N, 0) for a model without noise). The engine's ``direction`` setting (``AtoB``, ``BtoA``) swaps the two sides
of a dataset before anything sees them.
"""

from __future__ import annotations

import dataclasses

from workbench.base.errors import ConfigError
from workbench.host.registry import ImageData

SOURCE = "source"  # paired: the input image of each target image, same index
DOMAIN_B = "domain_b"  # unpaired: the second domain, its own order
PAIRED_FIELDS = (SOURCE,)
UNPAIRED_FIELDS = (DOMAIN_B,)
IMAGE_FIELDS = PAIRED_FIELDS + UNPAIRED_FIELDS
DIRECTIONS = ("AtoB", "BtoA")
LAYOUT_HELP = {SOURCE: "paired images (pix2pix's layout: train/ and test/ of A|B files side by side)",
               DOMAIN_B: "two unpaired domains (CycleGAN's layout: trainA/, trainB/, testA/, testB/)"}


def image_fields(model) -> tuple[str, ...]:
    """The image fields a model declares in ``batch_fields`` (empty for a model that generates from noise)."""
    return tuple(name for name in getattr(model, "batch_fields", ()) if name in IMAGE_FIELDS)


def is_translator(model) -> bool:
    """True for an image-to-image model: one that declares an image field."""
    return bool(image_fields(model))


def is_paired(model) -> bool:
    """True for a model trained on paired images (pix2pix), False for an unpaired one (CycleGAN) or any other."""
    return SOURCE in image_fields(model)


def orient(data: ImageData, direction: str, dataset: str) -> ImageData:
    """The dataset with A and B swapped for ``direction="BtoA"``: paired, the sources become the targets;
    unpaired, domain B becomes the images. ``AtoB`` leaves it as read."""
    if direction not in DIRECTIONS:
        raise ConfigError(f'direction must be AtoB or BtoA; got "{direction}".')
    if direction == "AtoB":
        return data
    fields = dict(getattr(data, "fields", None) or {})
    name = next((n for n in IMAGE_FIELDS if n in fields), None)
    if name is None:
        raise ConfigError(f'direction=BtoA needs a dataset with two sides (A and B); dataset "{dataset}" has one.')
    images, fields[name] = fields[name], data.images
    return dataclasses.replace(data, images=images, fields=fields, labels=None if name == DOMAIN_B else data.labels,
                               source=f"{data.source} (B to A)")


def check_fields_fit(model, data: ImageData, model_name: str, dataset: str) -> None:
    """Refuse, in one sentence, a translator given a dataset without its field (a paired model on an unpaired
    folder, an unpaired one on a paired folder, either on a plain folder), and fields of the wrong shape."""
    fields = getattr(data, "fields", None) or {}
    for name in image_fields(model):
        if name not in fields:
            has = next((LAYOUT_HELP[n] for n in IMAGE_FIELDS if n in fields), "one set of images")
            raise ConfigError(f'Model "{model_name}" trains on {LAYOUT_HELP[name]}, but dataset "{dataset}" '
                              f'holds {has}.')
        tensor = fields[name]
        if tuple(tensor.shape[1:2]) != tuple(data.images.shape[1:2]):
            raise ConfigError(f'Dataset "{dataset}" gives {name} images of {tensor.shape[1]} channels and images '
                              f'of {data.images.shape[1]}; both sides need the same.')
        if name in PAIRED_FIELDS and tensor.shape[0] != data.images.shape[0]:
            raise ConfigError(f'Dataset "{dataset}" gives {tensor.shape[0]} {name} images for '
                              f'{data.images.shape[0]} targets; paired images come one for one.')
