"""Sample-quality metrics: offline ones against the held-out test split, and the papers' Inception FID and KID.

The first six live in the feature space of a small classifier trained once
per labelled dataset (``workbench.quality``); they are cheap enough to run
during training. ``fid`` and ``kid`` are the numbers papers report (NVlabs' protocol,
``workbench.quality.inception``), ``inception_precision`` and ``inception_recall`` NVlabs' k-NN
precision/recall on the same Inception features; they need the Inception detector's file and
are computed only when named.
"""

from __future__ import annotations

from workbench.api import MetricContext, MetricSpec, hookimpl
from workbench.quality import domain, paper_metrics
from workbench.quality.conditional import class_accuracy
from workbench.quality.detector import unavailable_reason as detector_missing
from workbench.quality.inception import PROTOCOL_SAMPLES


def _precision(ctx: MetricContext) -> float:
    return domain.manifold_precision_recall(ctx)[0]


def _recall(ctx: MetricContext) -> float:
    return domain.manifold_precision_recall(ctx)[1]


METRICS = (
    MetricSpec("fd", "Fréchet distance to the test split in the domain classifier's features (not Inception FID)",
               domain.frechet_distance),
    MetricSpec("classes_covered", "classes the classifier finds among the samples (mode coverage)",
               lambda ctx: domain.class_coverage(ctx).classes_covered, lower_is_better=False),
    MetricSpec("class_kl", "KL divergence of the samples' predicted class histogram from the test split's",
               lambda ctx: domain.class_coverage(ctx).kl),
    MetricSpec("precision", "share of samples inside the real k-NN manifold (Kynkäänniemi 2019), domain features",
               _precision, lower_is_better=False),
    MetricSpec("recall", "share of real images inside the samples' k-NN manifold (Kynkäänniemi 2019), domain features",
               _recall, lower_is_better=False),
    MetricSpec("class_accuracy", "conditional models: share of samples the classifier puts in the class they were "
               "drawn for (chance is 1 / classes)", class_accuracy, lower_is_better=False, needs_labels=True),
    MetricSpec("fid", "Fréchet Inception distance to the whole training split, NVlabs' fid50k_full protocol "
               "(the paper number; needs the Inception detector)", paper_metrics.fid, default=False,
               available=detector_missing, samples=PROTOCOL_SAMPLES),
    MetricSpec("kid", "kernel Inception distance to the whole training split, NVlabs' kid50k_full protocol "
               "(needs the Inception detector)", paper_metrics.kid, default=False, available=detector_missing,
               samples=PROTOCOL_SAMPLES),
    MetricSpec("inception_precision", "share of samples inside the training split's k-NN manifold (k = 3) in "
               "Inception features, NVlabs' pr50k3_full arithmetic (needs the Inception detector)",
               paper_metrics.precision, lower_is_better=False, default=False, available=detector_missing,
               samples=PROTOCOL_SAMPLES),
    MetricSpec("inception_recall", "share of training images inside the samples' k-NN manifold (k = 3) in "
               "Inception features, NVlabs' pr50k3_full arithmetic (needs the Inception detector)",
               paper_metrics.recall, lower_is_better=False, default=False, available=detector_missing,
               samples=PROTOCOL_SAMPLES),
)


@hookimpl
def ganbench_register_metrics(register):
    for spec in METRICS:
        register(spec)
