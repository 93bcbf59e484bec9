"""The metrics in the domain classifier's feature space, as plugins call them.

Generated images are resized to the classifier's side and embedded once per
evaluation; Fréchet distance, coverage and precision/recall share that work.
"""

from __future__ import annotations

import torch

from workbench.base.errors import DataError
from workbench.data.device import resize_uint8
from workbench.quality.classifier import run_batches
from workbench.quality.context import MetricContext
from workbench.quality.coverage import Coverage, coverage
from workbench.quality.frechet import frechet_between
from workbench.quality.manifold import knn_radii, precision_recall

SUBSET_SEED = 7


def fake_embedding(ctx: MetricContext) -> tuple[torch.Tensor, torch.Tensor]:
    """The classifier's (features, logits) of the generated images."""
    reference = ctx.reference()

    def embed():
        if ctx.fake.shape[1] != reference.images.shape[1]:
            raise DataError(f"The generated images have {ctx.fake.shape[1]} channels, the dataset's "
                            f"{reference.images.shape[1]}.")
        return run_batches(reference.classifier.net, resize_uint8(ctx.fake, reference.side), ctx.device)

    return ctx.memo("domain.fake", embed)


def frechet_distance(ctx: MetricContext) -> float:
    """The Fréchet distance between generated and held-out real images in the classifier's feature space."""
    return frechet_between(fake_embedding(ctx)[0], ctx.reference().features)


def class_coverage(ctx: MetricContext) -> Coverage:
    """The predicted class histograms of generated and held-out real images; adds a note on missing classes."""

    def compute():
        reference = ctx.reference()
        result = coverage(fake_embedding(ctx)[1], reference.logits, reference.classes)
        ctx.notes.extend(result.notes())
        return result

    return ctx.memo("domain.coverage", compute)


def _subset(x: torch.Tensor, n: int) -> torch.Tensor:
    if x.shape[0] == n:
        return x
    return x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(SUBSET_SEED))[:n]]


def manifold_precision_recall(ctx: MetricContext) -> tuple[float, float]:
    """(precision, recall) of generated against held-out real features, on subsets of equal size.

    k-NN radii shrink as a set grows, so the paper compares sets of equal size.
    The real subset and its radii depend only on that size: they are kept across evaluations.
    """

    def compute():
        fake = fake_embedding(ctx)[0]
        n = min(fake.shape[0], ctx.reference().features.shape[0])

        def real_side():
            real = _subset(ctx.reference().features, n).to(ctx.device)
            return real, knn_radii(real)

        real, radii = ctx.memo(f"domain.real_manifold.{n}", real_side, keep=True)
        return precision_recall(real, _subset(fake, n).to(ctx.device), real_radii=radii)

    return ctx.memo("domain.precision_recall", compute)
