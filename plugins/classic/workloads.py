"""The four measured workloads: which engine plugin, which classic reference, which data, how long."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable

from plugins.classic.data import imagefolder_dataloader, mnist_dataloader, write_face_folder, write_mnist_root
from plugins.classic.scripts import AAE_SCRIPT, GAN_SCRIPT
from workbench.api import ClassicData, ConfigError, Workload


def _mnist_files(data: ClassicData) -> Path:
    if tuple(data.images.shape[1:]) != (1, 28, 28):
        raise ConfigError(f"The benchmark feeds the classic scripts through torchvision's MNIST reader, which needs "
                          f'28x28 grey images; "{data.dataset}" has shape {tuple(data.images.shape[1:])}.')
    return write_mnist_root(data.images, data.labels, Path(data.workdir) / "mnist")


def mnist_like(data: ClassicData) -> Callable[[], Iterable]:
    """PyTorch-GAN's pipeline (``datasets.MNIST`` through per-sample transforms) over the engine's images."""
    root, hp = _mnist_files(data), data.hp
    return lambda: mnist_dataloader(root, hp["image_size"], hp["batch_size"])


def tutorial_mnist_like(data: ClassicData) -> Callable[[], Iterable]:
    """The same pipeline with the tutorial's two DataLoader workers."""
    root, hp = _mnist_files(data), data.hp
    return lambda: mnist_dataloader(root, hp["image_size"], hp["batch_size"], num_workers=2)


def tutorial_folder(data: ClassicData) -> Callable[[], Iterable]:
    """The DCGAN tutorial's ImageFolder of JPEGs, decoded per sample by two DataLoader workers."""
    hp = data.hp
    return lambda: imagefolder_dataloader(data.folder, hp["image_size"], hp["batch_size"], workers=2)


def _loop(name: str) -> Callable:
    """The classic loop ``name`` of ``loops``, imported when built: the loops import torchvision (seconds), and
    every command loads the plugins while only ``ganbench bench`` builds a loop."""
    def build(*args, **kwargs):
        from plugins.classic import loops
        return getattr(loops, name)(*args, **kwargs)
    build.__name__ = build.__qualname__ = name
    return build


WORKLOADS = (
    Workload("mlp_gan", "mlp_gan", "PyTorch-GAN gan.py", _loop("ClassicGan"), mnist_like,
             {"batch_size": 64, "image_size": 28}, steps={"cpu": 300, "cuda": 3000}, warmup={"cpu": 10, "cuda": 50},
             whole_process=GAN_SCRIPT),
    Workload("aae", "aae", "PyTorch-GAN aae.py", _loop("ClassicAae"), mnist_like,
             {"batch_size": 64, "image_size": 32}, steps={"cpu": 300, "cuda": 3000}, warmup={"cpu": 10, "cuda": 50},
             whole_process=AAE_SCRIPT),
    Workload("dcgan-32", "dcgan", "PyTorch DCGAN tutorial, MNIST-like", _loop("ClassicDcgan"), tutorial_mnist_like,
             {"batch_size": 128, "image_size": 32}, steps={"cpu": 40, "cuda": 1000}, warmup={"cpu": 3, "cuda": 50}),
    Workload("dcgan-64", "dcgan", "PyTorch DCGAN tutorial, CelebA-like JPEG folder", _loop("ClassicDcgan"), tutorial_folder,
             {"batch_size": 128, "image_size": 64}, reads_folder=True, make_folder=write_face_folder,
             steps={"cpu": 12, "cuda": 200}, warmup={"cpu": 2, "cuda": 20}),
)
