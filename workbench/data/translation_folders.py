"""Read the two image-to-image folder layouts, as the datasets people train pix2pix and CycleGAN on come.

- **pix2pix** (facades, edges2shoes, maps): ``ROOT/train/``, ``ROOT/test/`` (or ``ROOT/val/``), each file an
  A|B pair side by side (twice as wide as high). A is the left half.
- **CycleGAN** (horse2zebra, apple2orange): ``ROOT/trainA/``, ``ROOT/trainB/``, ``ROOT/testA/``, ``ROOT/testB/``,
  two unpaired domains.

The training split reads only the training folders: the test split is never trained on (PyTorch-GAN's pix2pix
loader adds ``test/`` to its training files; this one does not). What is read is returned as ``ImageData``
with the image field of ``workbench.host.translation``: targets B with their sources A, or domain A with domain B.
Decoded tensors are cached like every folder's (``workbench.data.folder``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.base.errors import DataError
from workbench.data.folder import IMAGE_SUFFIXES, load_labelled_folder
from workbench.host.registry import ImageData
from workbench.host.translation import DOMAIN_B, SOURCE

PAIRED_SPLITS = {"train": ("train",), "test": ("test", "val")}


def folder_layout(root: Path) -> str:
    """``"cyclegan"`` for a root with ``trainA/`` and ``trainB/``, ``"pix2pix"`` for one with ``train/`` of A|B
    files (the first file twice as wide as high), else ``"plain"`` (any folder of images)."""
    root = Path(root)
    if (root / "trainA").is_dir() and (root / "trainB").is_dir():
        return "cyclegan"
    train = root / "train"
    if train.is_dir():
        first = next((p for p in sorted(train.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), None)
        if first is not None and _side_by_side(first):
            return "pix2pix"
    return "plain"


def _side_by_side(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            width, height = image.size
    except OSError:
        return False
    return width == 2 * height


def load_paired(root: Path, split: str, size: int, channels: int, cache_dir: Path | None) -> ImageData:
    """The A|B files of ``split`` (``train``; ``test`` reads ``test/`` or else ``val/``): targets B as the images,
    sources A in ``fields["source"]``, each half resized to ``size``."""
    folder = next((root / name for name in PAIRED_SPLITS[split] if (root / name).is_dir()), None)
    if folder is None:
        raise DataError(f"{root} has no {' or '.join(n + '/' for n in PAIRED_SPLITS[split])} folder of A|B pairs.")
    # Decoded whole (twice as wide), then cut in two: a square decode would crop the middle of the pair.
    wide = load_labelled_folder(folder, size, channels, cache_dir, "pairs", aspect=2)
    a, b = split_pair(wide.images)
    return ImageData(b, None, source=_describe(folder, wide.skipped), fields={SOURCE: a})


def load_unpaired(root: Path, split: str, size: int, channels: int, cache_dir: Path | None) -> ImageData:
    """Domain A of ``split`` (``trainA/`` or ``testA/``) as the images, domain B in ``fields["domain_b"]``."""
    folders = [root / f"{split}{side}" for side in "AB"]
    missing = [f.name + "/" for f in folders if not f.is_dir()]
    if missing:
        raise DataError(f"{root} has no {' or '.join(missing)} folder of CycleGAN's layout.")
    a, b = (load_labelled_folder(f, size, channels, cache_dir, "domain") for f in folders)
    source = f"{_describe(folders[0], a.skipped)} and {_describe(folders[1], b.skipped)}"
    return ImageData(a.images, None, source=source, fields={DOMAIN_B: b.images})


def load_translation_folder(root: Path, split: str, size: int, channels: int, cache_dir: Path | None) -> ImageData | None:
    """A paired or unpaired folder's ``split`` (see the module docstring), or None for a plain folder."""
    layout = folder_layout(root)
    if layout == "pix2pix":
        return load_paired(root, split, size, channels, cache_dir)
    if layout == "cyclegan":
        return load_unpaired(root, split, size, channels, cache_dir)
    return None


def _describe(folder: Path, skipped: int) -> str:
    return f"{folder} ({skipped} unreadable files skipped)" if skipped else str(folder)


def split_pair(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, C, H, 2H) A|B images as the two halves (A, B)."""
    half = images.shape[-1] // 2
    return images[..., :half].contiguous(), images[..., half:].contiguous()
