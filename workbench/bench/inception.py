"""``ganbench bench --inception``: the Inception detector fed as NVlabs feeds it, and as ganbench feeds it here.

NVlabs' metric code runs the detector on batches of 64 contiguous images whatever the device; ganbench keeps
that on a GPU and feeds a CPU batches of 8 in channels-last layout (``detector.CPU_BATCH_SIZE``). Both feedings
run the same network on the same images in one process, alternating which goes first, so the ratio holds
when the machine's speed drifts; the features of both are compared, since a faster feeding must not move
FID.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch

from workbench.base.errors import GanbenchError
from workbench.quality.detector import BATCH_SIZE, HOW_TO_GET, InceptionDetector, find_detector

NVLABS_FEEDING = {"batch_size": BATCH_SIZE, "channels_last": False}  # stylegan2-ada's metric_utils, on any device


@dataclass
class InceptionBench:
    """Per repeat, the images/s of NVlabs' feeding and of ganbench's, and how far their features differ."""

    device: str
    detector: str
    images: int
    batch_size: int
    channels_last: bool
    nvlabs_rates: list[float] = field(default_factory=list)
    ganbench_rates: list[float] = field(default_factory=list)
    max_relative_difference: float = 0.0

    @property
    def ratios(self) -> list[float]:
        """ganbench's rate over NVlabs', repeat by repeat."""
        return [g / n for g, n in zip(self.ganbench_rates, self.nvlabs_rates)]

    def to_dict(self) -> dict:
        return {"device": self.device, "detector": self.detector, "images": self.images,
                "ganbench_feeding": {"batch_size": self.batch_size, "channels_last": self.channels_last},
                "nvlabs_feeding": NVLABS_FEEDING,
                "nvlabs_images_per_s": self.nvlabs_rates, "ganbench_images_per_s": self.ganbench_rates,
                "ratios": self.ratios, "median_ratio": statistics.median(self.ratios),
                "max_relative_feature_difference": self.max_relative_difference}

    def lines(self) -> list[str]:
        median = statistics.median
        return [f"Inception features on {self.device}, {self.images} images a side, {len(self.ratios)} repeats:",
                f"  NVlabs' feeding (batches of {BATCH_SIZE}, contiguous): "
                f"{median(self.nvlabs_rates):.1f} images/s (median; {_rates(self.nvlabs_rates)})",
                f"  ganbench's (batches of {self.batch_size}, {'channels-last' if self.channels_last else 'contiguous'}"
                f"): {median(self.ganbench_rates):.1f} images/s (median; {_rates(self.ganbench_rates)})",
                f"  ratio ganbench / NVlabs: median {median(self.ratios):.2f} (each repeat: "
                f"{', '.join(f'{r:.2f}' for r in self.ratios)})",
                f"  features differ by at most {self.max_relative_difference:.1e} of their largest value",
                f"  so 10,000 images take about {10_000 / median(self.ganbench_rates) / 60:.1f} min here"]


def _rates(rates: list[float]) -> str:
    return ", ".join(f"{r:.1f}" for r in rates)


def measure(device: torch.device, device_name: str, images: int = 64, repeats: int = 3, seed: int = 0,
            report=print) -> InceptionBench:
    """Time both feedings of ``images`` random 32x32 grey images (timing does not depend on their content)."""
    found = find_detector()
    if found is None:
        raise GanbenchError("ganbench bench --inception needs the Inception detector file: " + HOW_TO_GET)
    detector = InceptionDetector(found, device)
    batch = torch.randint(0, 256, (images, 1, 32, 32), dtype=torch.uint8,
                          generator=torch.Generator().manual_seed(seed))
    feedings = {"nvlabs": NVLABS_FEEDING,
                "ganbench": {"batch_size": detector.batch_size, "channels_last": detector.channels_last}}
    result = InceptionBench(device_name, detector.describe(), images, detector.batch_size, detector.channels_last)
    features = {name: detector.features(batch[:8], **how) for name, how in feedings.items()}  # warm-up
    for repeat in range(repeats):
        order = ["nvlabs", "ganbench"] if repeat % 2 == 0 else ["ganbench", "nvlabs"]
        for name in order:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
            features[name] = detector.features(batch, **feedings[name])  # .cpu() inside waits for the device
            rate = images / (time.perf_counter() - started)
            (result.nvlabs_rates if name == "nvlabs" else result.ganbench_rates).append(rate)
            report(f"  repeat {repeat + 1}: {name} {rate:.1f} images/s")
    largest = features["nvlabs"].abs().max().clamp(min=1e-12)
    result.max_relative_difference = float((features["ganbench"] - features["nvlabs"]).abs().max() / largest)
    return result
