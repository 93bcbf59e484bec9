"""Inception FID and KID as NVlabs computes them (stylegan2-ada / stylegan3 ``metrics/``), for numbers a paper has.

The protocol, ``fid50k_full`` by default: 50,000 generated images, quantised to uint8 first, against every
image of the training split at the model's resolution; grey images repeated to three channels; both resized
to 299 inside the detector's pipeline (``detector.py``). The mean and the covariance are NVlabs' (float64 sums,
the covariance divided by N); KID is the unbiased MMD² with the cubic kernel over 100 subsets of 1,000.

The real side is computed once per dataset, resolution and detector and cached as safetensors in
``$GANBENCH_CACHE/inception/``, keyed by a hash of the training images, so a second evaluation pays only
for the generated images. With fewer generated images (``-n``, ``eval_samples``) the name says so:
``fid10k_full`` is 10,000 against the full training split, and is compared only with another ``fid10k_full``.

Precision and recall (``inception_precision``, ``inception_recall``) are NVlabs' ``pr50k3_full`` arithmetic
(``metrics/precision_recall.py``: k = 3, the first 200,000 training images at most) on the same features; the
real side's k-NN radii, its costly half, are cached in a second file beside the statistics (``reference_radii``).
NVlabs computes them in VGG16 features, so the protocol says ``_inception``: these are not a paper's numbers.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from workbench.base.atomic import atomic_write
from workbench.base.paths import cache_home
from workbench.quality.detector import InceptionDetector
from workbench.quality.frechet import frechet_distance
from workbench.quality.manifold import knn_radii

VERSION = 1  # bump when the reference pipeline changes: old caches are then ignored
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PROTOCOL_SAMPLES = 50_000  # fid50k_full, kid50k_full
PR_K = 3  # pr50k3_full: the third nearest neighbour
PR_MAX_REAL = 200_000  # pr50k3_full: at most the first 200,000 training images
# the metrics that need the detector (``ganbench eval --download`` fetches it for them)
METRICS = ("fid", "kid", "inception_precision", "inception_recall")


def protocol_name(metric: str, generated: int) -> str:
    """NVlabs' name of the protocol: ``fid50k_full`` for 50,000 generated against the full training split."""
    count = f"{generated // 1000}k" if generated % 1000 == 0 else str(generated)
    return f"{metric}{count}_full"


def pr_protocol_name(generated: int) -> str:
    """``pr50k3_full_inception``: NVlabs' ``pr50k3_full`` arithmetic (k = 3), in Inception (not VGG16) features;
    ``pr300_3_full_inception`` for 300 generated images (the underscore keeps 300 and k apart)."""
    count = f"{generated // 1000}k" if generated % 1000 == 0 else f"{generated}_"
    return f"pr{count}{PR_K}_full_inception"


def mean_cov(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of features (N, D) as NVlabs' ``FeatureStats`` has them: float64 sums,
    the covariance divided by N (not N - 1)."""
    count, dim = features.shape
    total = torch.zeros(dim, dtype=torch.float64)
    raw = torch.zeros(dim, dim, dtype=torch.float64)
    for part in features.split(8192):  # in float64 a block at a time: 60,000 x 2048 at once would be 1 GB more
        x = part.double().cpu()
        total += x.sum(0)
        raw += x.T @ x
    mean = total / count
    return mean, raw / count - torch.outer(mean, mean)


def fid_from_features(fake: torch.Tensor, real_mean: torch.Tensor, real_cov: torch.Tensor) -> float:
    """FID of generated features (N, 2048) against the real side's mean and covariance."""
    return frechet_distance(*mean_cov(fake), real_mean, real_cov)


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> float:
    """KID (Bińkowski et al. 2018) as NVlabs computes it: the unbiased MMD² with k(x, y) = (x·y / d + 1)³,
    averaged over ``subsets`` pairs of random subsets (drawn without replacement, seeded) of equal size."""
    real, fake = real.double(), fake.double()
    m = min(subset_size, real.shape[0], fake.shape[0])
    if m < 2:
        raise ValueError("KID needs at least two images on each side")
    dim = real.shape[1]
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = fake[torch.randperm(fake.shape[0], generator=gen)[:m]]
        y = real[torch.randperm(real.shape[0], generator=gen)[:m]]
        within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        across = (x @ y.T / dim + 1) ** 3
        total += float((within.sum() - within.diagonal().sum()) / (m - 1) - across.sum() * 2 / m)
    return total / subsets / m


@dataclass
class InceptionReference:
    """The real side of fid and kid: every training image's features, their mean and covariance."""

    features: torch.Tensor
    mean: torch.Tensor
    cov: torch.Tensor
    dataset: str
    side: int
    seconds: float
    path: Path | None = None
    from_cache: bool = False

    @property
    def count(self) -> int:
        return int(self.features.shape[0])

    def describe(self) -> str:
        origin = f"read from {self.path}" if self.from_cache else f"computed in {self.seconds:.0f} s"
        return (f"Inception statistics of all {self.count:,} training images of {self.dataset} at {self.side} px "
                f"({origin})")


def _fingerprint(images: torch.Tensor) -> str:
    import hashlib

    digest = hashlib.sha256(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def reference_path(dataset: str, images: torch.Tensor, detector_sha1: str) -> Path:
    """Where the statistics of these training images under this detector are cached."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", dataset)
    name = f"{safe}-{images.shape[-1]}px-inception{detector_sha1[:8]}-v{VERSION}-{_fingerprint(images)}.safetensors"
    return cache_home() / "inception" / name


def load_cached_reference(path: Path, dataset: str, side: int) -> InceptionReference | None:
    """The statistics cached at ``path``, or None if missing, damaged or from another version."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["ganbench-inception"])
        if meta.get("version") != VERSION:
            return None
        tensors = load_file(str(path))
        return InceptionReference(tensors["features"], tensors["mean"], tensors["cov"], dataset, side,
                                  float(meta["seconds"]), path, from_cache=True)
    except Exception:  # a damaged cache is recomputed, never fatal
        return None


def save_reference(reference: InceptionReference, path: Path) -> None:
    """Write the statistics atomically (an unwritable cache only costs a recomputation)."""
    from safetensors.torch import save_file

    meta = {"version": VERSION, "dataset": reference.dataset, "side": reference.side, "count": reference.count,
            "seconds": round(reference.seconds, 3), "time": round(time.time(), 3)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {"features": reference.features.contiguous(), "mean": reference.mean, "cov": reference.cov}
    with atomic_write(path) as tmp:
        save_file(tensors, str(tmp), metadata={"ganbench-inception": json.dumps(meta)})


def inception_reference(images: torch.Tensor, dataset: str, detector: InceptionDetector) -> InceptionReference:
    """The statistics of the training images (uint8 (N, C, S, S)): from the cache, or computed and cached."""
    path = reference_path(dataset, images, detector.sha1)
    cached = load_cached_reference(path, dataset, images.shape[-1])
    if cached is not None:
        return cached
    started = time.monotonic()
    features = detector.features(images)
    mean, cov = mean_cov(features)
    reference = InceptionReference(features, mean, cov, dataset, images.shape[-1], time.monotonic() - started, path)
    try:
        save_reference(reference, path)
    except OSError:
        reference.path = None
    return reference


def radii_path(reference: InceptionReference, count: int, k: int = PR_K) -> Path | None:
    """Where the k-NN radii of the reference's first ``count`` features are cached: beside its statistics."""
    if reference.path is None:
        return None
    return reference.path.with_name(f"{reference.path.stem}-knn{k}-first{count}.safetensors")


def reference_radii(reference: InceptionReference, count: int, device: torch.device, k: int = PR_K) -> torch.Tensor:
    """The k-NN radii (count,) of the first ``count`` training features: from the cache, or computed and cached.

    They are the real half of precision and recall, N² distances (60,000² for Fashion-MNIST), and depend
    only on the training images, the detector and k: a second evaluation pays only for the generated half.
    """
    from safetensors.torch import load_file, save_file

    path = radii_path(reference, count, k)
    if path is not None and path.is_file():
        try:
            radii = load_file(str(path))["radii"]
            if radii.shape == (count,) and bool(torch.isfinite(radii).all()):
                return radii
        except Exception:  # a damaged cache is recomputed, never fatal
            pass
    radii = knn_radii(reference.features[:count].to(device), k).cpu()
    if path is not None:
        try:
            with atomic_write(path) as tmp:
                save_file({"radii": radii.contiguous()}, str(tmp),
                          metadata={"ganbench-inception-radii": json.dumps({"version": VERSION, "k": k,
                                                                             "count": count})})
        except OSError:
            pass
    return radii
