"""The four measured workloads: which engine plugin, which classic script, which data, how long."""

from __future__ import annotations

from dataclasses import dataclass, field

from workbench.bench.classic_loops import ClassicAae, ClassicDcgan, ClassicGan


@dataclass(frozen=True)
class Workload:
    """One side-by-side case.

    :param name: the name given with ``ganbench bench --model``.
    :param model: the engine's model plugin.
    :param script: the classic script whose loop and data pipeline are reproduced.
    :param classic: the class holding that loop.
    :param hyperparams: the plugin settings both paths use (the script's defaults).
    :param faces: train on a folder of CelebA-sized JPEGs instead of the MNIST-like dataset.
    :param num_workers: the classic DataLoader's workers (PyTorch-GAN passes none; the tutorial uses 2).
    :param steps: timed steps by device type when ``--steps`` is not given.
    :param warmup: untimed steps by device type when ``--warmup`` is not given (cuDNN autotuning,
        the DataLoader's workers starting, first allocations).
    """

    name: str
    model: str
    script: str
    classic: type
    hyperparams: dict = field(default_factory=dict)
    faces: bool = False
    num_workers: int = 0
    steps: dict = field(default_factory=dict)
    warmup: dict = field(default_factory=dict)

    def default_steps(self, device_type: str) -> int:
        """Timed steps on ``device_type`` when the user gives no ``--steps``."""
        return self.steps.get(device_type, self.steps["cpu"])

    def default_warmup(self, device_type: str) -> int:
        """Warm-up steps on ``device_type`` when the user gives no ``--warmup``."""
        return self.warmup.get(device_type, self.warmup["cpu"])


WORKLOADS = {w.name: w for w in (
    Workload("mlp_gan", "mlp_gan", "PyTorch-GAN gan.py", ClassicGan,
             {"batch_size": 64, "image_size": 28}, steps={"cpu": 300, "cuda": 3000}, warmup={"cpu": 10, "cuda": 50}),
    Workload("aae", "aae", "PyTorch-GAN aae.py", ClassicAae,
             {"batch_size": 64, "image_size": 32}, steps={"cpu": 300, "cuda": 3000}, warmup={"cpu": 10, "cuda": 50}),
    Workload("dcgan-32", "dcgan", "PyTorch DCGAN tutorial, MNIST-like", ClassicDcgan,
             {"batch_size": 128, "image_size": 32}, num_workers=2, steps={"cpu": 40, "cuda": 1000},
             warmup={"cpu": 3, "cuda": 50}),
    Workload("dcgan-64", "dcgan", "PyTorch DCGAN tutorial, CelebA-like JPEG folder", ClassicDcgan,
             {"batch_size": 128, "image_size": 64}, faces=True, num_workers=2,
             steps={"cpu": 12, "cuda": 200}, warmup={"cpu": 2, "cuda": 20}),
)}
