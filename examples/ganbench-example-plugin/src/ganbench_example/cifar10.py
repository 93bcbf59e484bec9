"""CIFAR-10: 60,000 colour images of 32x32 in 10 classes (50,000 train, 10,000 test).

Looks in ``--data-root`` or else ``$GANBENCH_DATA/cifar10``. The binary version
(``cifar-10-batches-bin/``: one label byte and 3,072 pixel bytes per image, the
red, green and blue planes in turn) is read directly, with no pickle involved;
the Python version (``cifar-10-batches-py/``) is read through torchvision,
which also downloads it when ``--download`` is given.
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.api import DataError, DataRequest, DatasetSpec, ImageData, data_home, hookimpl

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RECORD_BYTES = 1 + 3 * 32 * 32
SPLIT_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
HOME_PAGE = "www.cs.toronto.edu/~kriz/cifar.html"


def read_binary_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """One file of the binary version: uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read {path}: {exc.strerror}.") from None
    if not raw or len(raw) % RECORD_BYTES:
        raise DataError(f"{path} holds {len(raw):,} bytes, not a whole number of 3,073-byte CIFAR-10 records.")
    records = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, RECORD_BYTES)
    labels = records[:, 0].long()
    if int(labels.max()) >= len(CLASSES):
        raise DataError(f"{path} has a label of {int(labels.max())}; CIFAR-10 labels are 0 to 9.")
    return records[:, 1:].reshape(-1, 3, 32, 32).clone(), labels


def _read_binary(folder: Path, split: str) -> ImageData:
    parts = [read_binary_batch(folder / name) for name in SPLIT_FILES[split]]
    return ImageData(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), source=str(folder),
                     classes=CLASSES)


def _read_python(root: Path, split: str, download: bool) -> ImageData:
    import torchvision.datasets as tvd

    try:
        data = tvd.CIFAR10(str(root), train=split == "train", download=download)
    except Exception as exc:  # torchvision raises RuntimeError when files are missing, URLError/OSError offline
        raise DataError(f"Reading CIFAR-10 from {root} through torchvision failed ({type(exc).__name__}: {exc}).") \
            from None
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return ImageData(images, torch.tensor(data.targets, dtype=torch.long), source=str(root / data.base_folder),
                     classes=CLASSES)


def load(request: DataRequest) -> ImageData:
    """The split ``request.split`` from the binary version if present, else the Python version."""
    root = request.root or data_home() / "cifar10"
    for folder in (root / "cifar-10-batches-bin", root):
        if any((folder / name).is_file() for names in SPLIT_FILES.values() for name in names):
            missing = [name for name in SPLIT_FILES[request.split] if not (folder / name).is_file()]
            if missing:
                raise DataError(f"{folder} lacks {', '.join(missing)} of the CIFAR-10 binary version.")
            return _read_binary(folder, request.split)
    if (root / "cifar-10-batches-py").is_dir() or request.download:
        return _read_python(root, request.split, request.download)
    raise DataError(f"CIFAR-10 was not found in {root}: unpack the binary version (cifar-10-binary.tar.gz from "
                    f"{HOME_PAGE}) there, pass --data-root DIR, or add --download when online.")


@hookimpl
def ganbench_register_datasets(register):
    register(DatasetSpec("cifar10", "CIFAR-10, 50,000 / 10,000 colour images of 32x32 in 10 classes "
                                    "(binary version read directly, Python version via torchvision)", load))
