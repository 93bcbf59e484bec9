"""MNIST, Fashion-MNIST, and the Fashion-MNIST test split that ships with ganbench.

All read torchvision's IDX files (gzipped or not). ``--data-root`` may point at
the raw files or at a torchvision root (``ROOT/MNIST/raw``); ``--download``
fetches them through torchvision when the network allows.
"""

from __future__ import annotations

from pathlib import Path

from workbench.api import DataError, DataRequest, DatasetSpec, ImageData, data_home, hookimpl, read_idx

SHIPPED = Path(__file__).parent / "data"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
DIGITS = tuple(str(d) for d in range(10))


def _find(folders: list[Path], stem: str) -> Path | None:
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_idx_pair(folders: list[Path], split: str, title: str, classes: tuple[str, ...]) -> ImageData:
    """Find and read the images and labels of ``split`` in the first folder that has them."""
    prefix = "train" if split == "train" else "t10k"
    images = _find(folders, f"{prefix}-images-idx3-ubyte")
    labels = _find(folders, f"{prefix}-labels-idx1-ubyte")
    if images is None:
        where = " or ".join(str(f) for f in folders[:2])
        raise DataError(f"{title} was not found: put {prefix}-images-idx3-ubyte.gz and {prefix}-labels-idx1-ubyte.gz "
                        f"in {where}, pass --data-root DIR, or add --download when online.")
    pixels = read_idx(images)
    if pixels.dim() != 3:
        raise DataError(f"{images} holds an array of shape {tuple(pixels.shape)}, not a stack of images.")
    targets = read_idx(labels).long() if labels else None
    if targets is not None and targets.shape[0] != pixels.shape[0]:
        raise DataError(f"{labels} has {targets.shape[0]} labels for {pixels.shape[0]} images.")
    return ImageData(pixels.unsqueeze(1), targets, source=str(images.parent), classes=classes)


def _folders(root: Path, sub: str) -> list[Path]:
    return [root, root / "raw", root / sub / "raw"]


def _download(torchvision_name: str, root: Path, title: str) -> None:
    import torchvision.datasets as tvd

    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            getattr(tvd, torchvision_name)(str(root), train=train, download=True)
    except Exception as exc:  # torchvision raises RuntimeError/URLError/OSError offline
        raise DataError(f"Downloading {title} into {root} failed ({type(exc).__name__}); without a network, "
                        f"copy the IDX files there by hand.") from None


def _loader(title: str, torchvision_name: str, sub: str, classes, extra: list[Path] = ()):
    def load(request: DataRequest) -> ImageData:
        root = request.root or data_home() / sub
        folders = _folders(root, sub) + list(extra if request.root is None else [])
        if request.download and _find(folders, "train-images-idx3-ubyte") is None:
            _download(torchvision_name, root, title)
        return load_idx_pair(folders, request.split, title, classes)

    return load


def load_shipped(request: DataRequest) -> ImageData:
    """The 10,000 Fashion-MNIST test images shipped inside the package; both splits read them."""
    return load_idx_pair([SHIPPED], "test", "The shipped Fashion-MNIST test split", FASHION_CLASSES)


@hookimpl
def ganbench_register_datasets(register):
    register(DatasetSpec("mnist", "MNIST handwritten digits, 60,000 train / 10,000 test, 28x28 grey",
                         _loader("MNIST", "MNIST", "MNIST", DIGITS)))
    register(DatasetSpec("fashion-mnist", "Fashion-MNIST clothing, 60,000 / 10,000, 28x28 grey; "
                                          "also found where Debian's dataset-fashion-mnist puts it",
                         _loader("Fashion-MNIST", "FashionMNIST", "FashionMNIST", FASHION_CLASSES, [DEBIAN_FASHION])))
    register(DatasetSpec("fashion-mnist-test", "the Fashion-MNIST test split (10,000 images) shipped with ganbench; "
                                               "works offline", load_shipped))
