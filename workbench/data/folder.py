"""Decode a folder of images once into a uint8 tensor, cached on disk for every later run.

Used by the ``celeba`` and ``folder`` datasets and free for third-party
dataset plugins. Unreadable or truncated files are skipped and counted.
A folder whose images all lie in sub-folders (torchvision's ImageFolder layout,
``root/<class>/...``) is labelled: one class per sub-folder, sorted by name.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.base.atomic import atomic_write
from workbench.base.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def list_images(folder: Path) -> list[Path]:
    """Every image file below ``folder``, sorted, so the order is the same on every machine."""
    if not folder.is_dir():
        raise DataError(f"The image folder {folder} does not exist.")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"The folder {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
    return files


def decode_square(path: Path, size: int, channels: int, aspect: int = 1) -> torch.Tensor | None:
    """Read one image as uint8 (C, size, size): shorter side resized to ``size``, then centre-cropped.

    This is the tutorial's ``Resize(size)`` + ``CenterCrop(size)``. Returns None when
    the file cannot be decoded (truncated, not an image, too large). ``aspect=2`` reads an A|B pair
    (``workbench.data.translation_folders``): resized whole to (C, size, 2 * size), nothing cropped.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB" if channels == 3 else "L")
            if aspect != 1:
                image = image.resize((size * aspect, size), Image.BILINEAR, reducing_gap=None)
                pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
                return pixels.view(size, size * aspect, channels).permute(2, 0, 1).contiguous()
            width, height = image.size
            scale = size / min(width, height)
            resized = (max(size, round(width * scale)), max(size, round(height * scale)))
            image = image.resize(resized, Image.BILINEAR, reducing_gap=None)
            left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
            image = image.crop((left, top, left + size, top + size))
            pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return pixels.view(size, size, channels).permute(2, 0, 1).contiguous()


def _cache_key(files: list[Path], size: int, channels: int, aspect: int = 1) -> str:
    digest = hashlib.sha256(f"{size}:{channels}".encode() + (f":{aspect}".encode() if aspect != 1 else b""))
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


@dataclass
class FolderImages:
    """What ``load_labelled_folder`` read: uint8 images (N, C, size, size), their labels (None when the folder has
    no class sub-folders), the class names (sorted sub-folder names) and the number of files skipped."""

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: tuple[str, ...]
    skipped: int


def folder_classes(folder: Path, files: list[Path]) -> tuple[str, ...]:
    """The class names of ``folder``: its sub-folders holding images, sorted, when every image lies in one;
    empty (unlabelled) when some images lie directly in ``folder``."""
    firsts = {path.relative_to(folder).parts[0] if len(path.relative_to(folder).parts) > 1 else None
              for path in files}
    if None in firsts:
        return ()
    return tuple(sorted(firsts))


def load_folder(folder: Path, size: int, channels: int, cache_dir: Path | None, title: str) -> tuple[torch.Tensor, int]:
    """All images of ``folder`` (sub-folders included) as uint8 (N, C, size, size) and the number of files skipped.

    ``load_labelled_folder`` gives the class labels of a folder with class sub-folders as well.
    """
    result = load_labelled_folder(folder, size, channels, cache_dir, title)
    return result.images, result.skipped


def load_labelled_folder(folder: Path, size: int, channels: int, cache_dir: Path | None, title: str,
                         aspect: int = 1) -> FolderImages:
    """All images of ``folder``, shorter side resized to ``size`` and centre-cropped, with labels from its class
    sub-folders when it has them (see ``folder_classes``).

    The decoded tensor is cached in ``cache_dir`` (a safetensors file named by a
    hash of the file list, sizes and dates), so a JPEG is decoded once.
    """
    from safetensors.torch import load_file, save_file

    files = list_images(folder)
    classes = folder_classes(folder, files)
    index = {name: i for i, name in enumerate(classes)}
    key = _cache_key(files, size, channels, aspect)
    cache = cache_dir / f"{title}-{size}px-{channels}ch-{key}.safetensors" if cache_dir else None
    if cache is not None and cache.is_file():
        try:
            stored = load_file(str(cache))
            if not classes or "labels" in stored:  # a cache written before labels were read is rebuilt
                return FolderImages(stored["images"], stored["labels"] if classes else None, classes,
                                    int(stored["skipped"].item()))
        except Exception:
            pass  # a damaged cache is rebuilt below
    workers = min(8, (os.cpu_count() or 1) * 2)
    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(lambda p: decode_square(p, size, channels, aspect), files, chunksize=64))
    kept = [(path, image) for path, image in zip(files, decoded) if image is not None]
    skipped = len(files) - len(kept)
    if not kept:
        raise DataError(f"None of the {len(files)} image files in {folder} could be decoded.")
    stack = torch.stack([image for _, image in kept])
    labels = None
    if classes:
        labels = torch.tensor([index[path.relative_to(folder).parts[0]] for path, _ in kept], dtype=torch.int64)
    if cache is not None:
        stored = {"images": stack, "skipped": torch.tensor(skipped)}
        if labels is not None:
            stored["labels"] = labels
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(cache) as tmp:
                save_file(stored, str(tmp))
        except Exception:  # OSError, or safetensors' own error for a full disk
            pass  # a full or read-only cache folder costs the next run a decode, nothing more
    return FolderImages(stack, labels, classes, skipped)
