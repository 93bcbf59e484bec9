"""The classic scripts' data pipelines, fed from the very images the engine trains on.

PyTorch-GAN reads ``datasets.MNIST`` through ``Resize``, ``ToTensor`` and
``Normalize`` in a single-process DataLoader; the DCGAN tutorial reads an
``ImageFolder`` of JPEGs through ``Resize``, ``CenterCrop``, ``ToTensor`` and
``Normalize`` with two worker processes. Here the MNIST files are written
from the engine's uint8 tensor, and the CelebA-like folder is a set of
generated 178x218 JPEGs (CelebA's aligned size) that both paths decode.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from workbench.api import write_idx

FACE_WIDTH, FACE_HEIGHT = 178, 218  # img_align_celeba


def write_mnist_root(images: torch.Tensor, labels: torch.Tensor | None, root: Path, folder: str = "MNIST") -> Path:
    """Write uint8 (N, 1, 28, 28) images as the raw files ``torchvision.datasets.MNIST(root)`` reads
    (``folder="FashionMNIST"``: those ``datasets.FashionMNIST(root)`` reads)."""
    raw = Path(root) / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    pixels = images.reshape(images.shape[0], images.shape[-2], images.shape[-1]).cpu()
    targets = labels.cpu() if labels is not None else torch.zeros(pixels.shape[0], dtype=torch.uint8)
    write_idx(raw / "train-images-idx3-ubyte", pixels)
    write_idx(raw / "train-labels-idx1-ubyte", targets)
    # torchvision checks that the test split exists too; the classic loop never reads it.
    write_idx(raw / "t10k-images-idx3-ubyte", pixels[:16])
    write_idx(raw / "t10k-labels-idx1-ubyte", targets[:16])
    return Path(root)


def mnist_dataloader(root: Path, img_size: int, batch_size: int, num_workers: int = 0):
    """``gan.py``/``aae.py``: MNIST through per-sample PIL transforms, shuffled, in a DataLoader."""
    import torchvision.transforms as transforms
    from torchvision import datasets

    return torch.utils.data.DataLoader(
        datasets.MNIST(
            str(root),
            train=True,
            download=False,
            transform=transforms.Compose(
                [transforms.Resize(img_size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])]
            ),
        ),
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
    )


def imagefolder_dataloader(root: Path, image_size: int, batch_size: int, workers: int = 2):
    """The DCGAN tutorial: an ImageFolder of JPEGs decoded and transformed per sample, every epoch."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    dataset = dset.ImageFolder(root=str(root),
                               transform=transforms.Compose([
                                   transforms.Resize(image_size),
                                   transforms.CenterCrop(image_size),
                                   transforms.ToTensor(),
                                   transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
                               ]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)


def _face(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """One synthetic portrait: a shaded background, hair, a skin-toned face with eyes and a mouth, sensor noise."""
    h, w = yy.shape
    top, bottom = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    image = top + (bottom - top) * (yy / h)[..., None]
    cx, cy = w / 2 + rng.normal(0, 6), h * 0.55 + rng.normal(0, 6)
    rx, ry = rng.uniform(42, 56), rng.uniform(58, 72)
    hair = ((xx - cx) / (rx * 1.15)) ** 2 + ((yy - cy + 18) / (ry * 1.1)) ** 2 < 1
    image[hair] = rng.uniform(10, 120, 3) * rng.uniform(0.6, 1.0)
    face = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1
    skin = np.array([225, 180, 150]) * rng.uniform(0.45, 1.05)
    image[face] = skin * (1 - 0.25 * ((xx[face] - cx) / rx))[..., None]
    for side in (-1, 1):
        eye = ((xx - cx - side * rx * 0.42) / 9) ** 2 + ((yy - cy + ry * 0.18) / 5) ** 2 < 1
        image[eye] = rng.uniform(0, 70, 3)
    mouth = ((xx - cx) / (rx * 0.45)) ** 2 + ((yy - cy - ry * 0.5) / 5) ** 2 < 1
    image[mouth] = np.array([150, 60, 60]) * rng.uniform(0.6, 1.1)
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_faces(folder: Path, seed: int, indices: range) -> None:
    from PIL import Image

    yy, xx = np.mgrid[0:FACE_HEIGHT, 0:FACE_WIDTH].astype(np.float32)
    for index in indices:
        path = folder / f"{index:06d}.jpg"
        if not path.exists():
            Image.fromarray(_face(np.random.default_rng([seed, index]), yy, xx)).save(path, quality=90)


def write_face_folder(root: Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` CelebA-sized JPEGs into ``root/faces`` (ImageFolder needs one class folder); return ``root``.

    Files already there are kept. Large folders are written by one process per core.
    """
    folder = Path(root) / "faces"
    folder.mkdir(parents=True, exist_ok=True)
    workers = min(os.cpu_count() or 1, max(1, count // 256))
    if workers == 1:
        _write_faces(folder, seed, range(count))
        return Path(root)
    from concurrent.futures import ProcessPoolExecutor

    chunk = -(-count // workers)
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(_write_faces, folder, seed, range(start, min(start + chunk, count)))
                for start in range(0, count, chunk)]
        for job in jobs:
            job.result()
    return Path(root)
