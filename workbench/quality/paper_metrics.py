"""``fid``, ``kid`` and Inception precision/recall of a ``MetricContext``: the detector and the training split's
statistics, kept per evaluator; the generated images' features extracted once per evaluation for all four.

The real side is the run's whole training split at the model's image size (what the generator learned),
not the held-out split ``fd`` uses: that is NVlabs' ``_full`` protocol. Each evaluation names its protocol
(``ctx.protocols``) so that a ``fid10k_full`` is never read as a paper's ``fid50k_full``.
"""

from __future__ import annotations

import torch

from workbench.base.errors import DataError, GanbenchError
from workbench.data.device import resize_uint8
from workbench.data.loading import load_images
from workbench.quality.context import MetricContext
from workbench.quality.detector import InceptionDetector, find_detector, unavailable_reason
from workbench.quality.inception import (
    KID_SUBSET_SIZE,
    KID_SUBSETS,
    PR_K,
    PR_MAX_REAL,
    InceptionReference,
    fid_from_features,
    inception_reference,
    kernel_inception_distance,
    pr_protocol_name,
    protocol_name,
    reference_radii,
)
from workbench.quality.manifold import precision_recall


DETECTOR = "inception.detector"  # MetricContext.memo keys: the detector (per evaluator), the generated features
FAKE_FEATURES = "inception.fake"


def wanted(evaluator) -> bool:
    """Whether an evaluator's metrics need the generated images' Inception features."""
    return any(spec.compute in (fid, kid, precision, recall) for spec in evaluator.specs)


def detector(ctx: MetricContext) -> InceptionDetector:
    """The evaluator's detector, loaded (and its SHA-1 checked) on first use."""
    def load():
        found = find_detector()
        if found is None:
            raise GanbenchError(f"Metric needs the Inception detector: {unavailable_reason()}")
        return InceptionDetector(found, ctx.device)

    return ctx.memo(DETECTOR, load, keep=True)


def reference(ctx: MetricContext) -> InceptionReference:
    """The training split's Inception statistics (from the cache after the first time)."""
    def load():
        evaluator = ctx.evaluator
        images = load_images(evaluator.config, evaluator.plugins, evaluator.image_size, "train").images
        # the images the generator learned: the engine resizes a dataset to the model's size the same way
        if images.shape[-1] != evaluator.image_size:
            images = resize_uint8(images, evaluator.image_size)
        return inception_reference(images, evaluator.config.dataset, detector(ctx))

    found = ctx.memo("inception.reference", load, keep=True)
    ctx.memo("inception.notes", lambda: ctx.notes.extend([detector(ctx).describe(), found.describe()]), keep=True)
    return found


def fake_features(ctx: MetricContext) -> torch.Tensor:
    """The generated images' Inception features, once per evaluation."""
    real = reference(ctx)
    if ctx.fake.shape[-1] != real.side or ctx.fake.shape[1] not in (1, 3):
        raise DataError(f"The generated images are {tuple(ctx.fake.shape[1:])}; the training images "
                        f"{real.side} px: fid compares images of one size.")
    return ctx.memo(FAKE_FEATURES, lambda: detector(ctx).features(ctx.fake))


def _named(ctx: MetricContext, metric: str, real: InceptionReference) -> None:
    name = protocol_name(metric, ctx.fake.shape[0])
    ctx.protocols[metric] = name
    extra = (f", {KID_SUBSETS} subsets of {min(KID_SUBSET_SIZE, ctx.fake.shape[0], real.count):,}"
             if metric == "kid" else "")
    ctx.notes.append(f"{metric} is {name}: {ctx.fake.shape[0]:,} generated images against all {real.count:,} "
                     f"training images{extra} (NVlabs' protocol; papers report {protocol_name(metric, 50_000)})")


def fid(ctx: MetricContext) -> float:
    """Fréchet Inception distance of the generated images to the whole training split."""
    fake, real = fake_features(ctx), reference(ctx)
    _named(ctx, "fid", real)
    return fid_from_features(fake, real.mean, real.cov)


def kid(ctx: MetricContext) -> float:
    """Kernel Inception distance of the generated images to the whole training split."""
    fake, real = fake_features(ctx), reference(ctx)
    _named(ctx, "kid", real)
    return kernel_inception_distance(real.features, fake)


def _precision_recall(ctx: MetricContext) -> tuple[float, float]:
    """NVlabs' pr50k3_full arithmetic on the Inception features: once per evaluation for both numbers."""
    def compute():
        fake, real = fake_features(ctx), reference(ctx)
        count = min(real.count, PR_MAX_REAL)

        def real_side():  # kept across evaluations: the features on the device and their radii
            radii = reference_radii(real, count, ctx.device)
            return real.features[:count].to(ctx.device), radii.to(ctx.device)

        manifold, radii = ctx.memo(f"inception.real_manifold.{count}", real_side, keep=True)
        name, whole = pr_protocol_name(ctx.fake.shape[0]), "all" if count == real.count else "the first"
        ctx.notes.append(f"inception_precision and inception_recall are {name}: {ctx.fake.shape[0]:,} generated "
                         f"images against {whole} {count:,} training images, k = {PR_K} (NVlabs' pr50k3_full "
                         f"arithmetic in Inception features; papers' pr50k3_full is in VGG16 features, not these)")
        return precision_recall(manifold, fake.to(ctx.device), PR_K, real_radii=radii)

    found = ctx.memo("inception.precision_recall", compute)
    ctx.protocols["inception_precision"] = ctx.protocols["inception_recall"] = pr_protocol_name(ctx.fake.shape[0])
    return found


def precision(ctx: MetricContext) -> float:
    """Share of the generated images inside the training split's k-NN manifold, in Inception features."""
    return _precision_recall(ctx)[0]


def recall(ctx: MetricContext) -> float:
    """Share of the training images inside the generated images' k-NN manifold, in Inception features."""
    return _precision_recall(ctx)[1]
