"""The standalone reference scripts ``ganbench bench --whole-process`` runs as processes of their own."""

from __future__ import annotations

from pathlib import Path

from workbench.api import ClassicScript

HERE = Path(__file__).resolve().parent


def _reader(dataset: str) -> str:
    return "fashion-mnist" if dataset.startswith("fashion") else "mnist"


def write_data_root(dataset: str, images, labels, workdir: Path) -> Path:
    """The engine's images as the raw files torchvision's reader opens offline (``FashionMNIST/raw`` for the
    Fashion-MNIST datasets, ``MNIST/raw`` otherwise): both sides train on the same images."""
    from plugins.classic.data import write_mnist_root

    if tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(f'the scripts read 28x28 grey images through torchvision; "{dataset}" has shape '
                         f"{tuple(images.shape[1:])}")
    folder = "FashionMNIST" if _reader(dataset) == "fashion-mnist" else "MNIST"
    return write_mnist_root(images, labels, Path(workdir) / "script-data", folder)


def _arguments(hp: dict, steps: int, root: Path, dataset: str) -> list[str]:
    """The reference's own flags with the benchmark's values, plus the offline data and the step count."""
    values = {"batch_size": hp["batch_size"], "lr": hp["lr"], "b1": hp["b1"], "b2": hp["b2"],
              "latent_dim": hp["latent_dim"], "img_size": hp["image_size"]}
    args = [item for key, value in values.items() for item in (f"--{key}", str(value))]
    return args + ["--data_root", str(root), "--dataset", _reader(dataset), "--n_steps", str(steps)]


GAN_SCRIPT = ClassicScript(HERE / "gan_script.py", _arguments, write_data_root)
AAE_SCRIPT = ClassicScript(HERE / "aae_script.py", _arguments, write_data_root)
