"""The metrics in the domain classifier's feature space, as plugins call them.

Generated images are resized to the classifier's side and embedded once per
evaluation; Fréchet distance, coverage and precision/recall share that work.
"""

from __future__ import annotations

import torch

from workbench.engine.data import resize_uint8
from workbench.errors import DataError
from workbench.quality.classifier import run_batches
from workbench.quality.context import MetricContext
from workbench.quality.coverage import Coverage, coverage
from workbench.quality.frechet import frechet_between
from workbench.quality.manifold import precision_recall

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


def _equal_subsets(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # k-NN radii shrink as a set grows, so the paper compares sets of equal size.
    n = min(a.shape[0], b.shape[0])
    gen = torch.Generator().manual_seed(SUBSET_SEED)
    pick = lambda x: x if x.shape[0] == n else x[torch.randperm(x.shape[0], generator=gen)[:n]]  # noqa: E731
    return pick(a), pick(b)


def manifold_precision_recall(ctx: MetricContext) -> tuple[float, float]:
    """(precision, recall) of generated against held-out real features, on equal-size subsets."""

    def compute():
        real, fake = _equal_subsets(ctx.reference().features, fake_embedding(ctx)[0])
        return precision_recall(real.to(ctx.device), fake.to(ctx.device))

    return ctx.memo("domain.precision_recall", compute)
