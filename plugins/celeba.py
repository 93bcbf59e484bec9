"""CelebA (aligned faces) and any folder of images, decoded once into a cached uint8 tensor.

``folder-xflip`` is ``folder`` with every image also mirrored left to right, as stylegan2-ada's and R3GAN's
``--mirror=1`` doubles their datasets: twice the images (and twice the device memory), the labels kept.

CelebA is not downloaded: Google Drive's quota breaks automated downloads, so
the error says where to get ``img_align_celeba.zip`` and where to unpack it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.api import (DataError, DataRequest, DatasetSpec, ImageData, cache_home, data_home, hookimpl,
                           load_folder, load_labelled_folder, load_translation_folder)

CELEBA_HELP = ("download img_align_celeba.zip from the CelebA page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html) "
               "and unzip it there, or pass --data-root DIR")


def load_celeba(request: DataRequest) -> ImageData:
    root = request.root or data_home() / "celeba"
    folder = next((f for f in (root / "img_align_celeba", root) if f.is_dir() and any(f.glob("*.jpg"))), None)
    if folder is None:
        raise DataError(f"CelebA was not found in {root}/img_align_celeba: {CELEBA_HELP}.")
    images, skipped = load_folder(folder, request.image_size, 3, request.cache_dir or cache_home(), "celeba")
    return ImageData(images, None, source=f"{folder} ({skipped} unreadable files skipped)" if skipped else str(folder))


def load_image_folder(request: DataRequest) -> ImageData:
    if request.root is None:
        raise DataError("The folder dataset needs --data-root DIR, a folder of JPEG or PNG images.")
    root = Path(request.root)
    pairs = load_translation_folder(root, request.split, request.image_size, 3, request.cache_dir or cache_home())
    if pairs is not None:  # pix2pix's or CycleGAN's layout (workbench.data.translation_folders)
        return pairs
    found = load_labelled_folder(root, request.image_size, 3, request.cache_dir or cache_home(), "folder")
    source = f"{root} ({found.skipped} unreadable files skipped)" if found.skipped else str(root)
    return ImageData(found.images, found.labels, source=source, classes=found.classes)


def load_mirrored_folder(request: DataRequest) -> ImageData:
    data = load_image_folder(request)
    labels = None if data.labels is None else data.labels.repeat(2)
    # a translation folder's other side is mirrored with it: a pair stays a pair, each domain doubles
    fields = {name: torch.cat([images, images.flip(-1)]) for name, images in data.fields.items()}
    return ImageData(torch.cat([data.images, data.images.flip(-1)]), labels,
                     source=f"{data.source}, x-flipped copies added", classes=data.classes, fields=fields)


@hookimpl
def ganbench_register_datasets(register):
    register(DatasetSpec("celeba", "CelebA aligned faces (202,599 JPEGs), centre-cropped to the model's size, RGB",
                         load_celeba))
    register(DatasetSpec("folder", "any folder of images (--data-root DIR), centre-cropped square, RGB; "
                                    "labelled by its class sub-folders when it has them; pix2pix's train/ test/ of "
                                    "A|B pairs and CycleGAN's trainA/ trainB/ testA/ testB/ for translation",
                         load_image_folder))
    register(DatasetSpec("folder-xflip", "folder (--data-root DIR) with every image also mirrored left to right "
                                          "(stylegan's --mirror): twice the images", load_mirrored_folder))
