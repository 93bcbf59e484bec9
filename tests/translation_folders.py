"""Real image-to-image folders for the tests: pix2pix's A|B files and CycleGAN's two domains, as PNGs."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image


def write_png(pixels: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.numpy(), mode="L").save(path)


def pix2pix_folder(root: Path, images: torch.Tensor, train: int, test: int, split_names=("train", "test")) -> Path:
    """``root/train`` and ``root/test`` of A|B files: A the inverted garment, B the garment (uint8 (N, H, W))."""
    for split, rows in ((split_names[0], range(train)), (split_names[1], range(train, train + test))):
        for i in rows:
            write_png(torch.cat((255 - images[i], images[i]), dim=-1), root / split / f"{i:04d}.png")
    return root


def cyclegan_folder(root: Path, a: torch.Tensor, b: torch.Tensor, test: int) -> Path:
    """``trainA``/``testA`` from ``a``, ``trainB``/``testB`` from ``b`` (uint8 (N, H, W)); the last ``test`` test."""
    for side, images in (("A", a), ("B", b)):
        for i, image in enumerate(images):
            split = "test" if i >= images.shape[0] - test else "train"
            write_png(image, root / f"{split}{side}" / f"{i:04d}.png")
    return root
