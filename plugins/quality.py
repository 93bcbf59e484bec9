"""Sample-quality metrics that work offline, computed against the dataset's held-out test split.

The first six live in the feature space of a small classifier trained once
per labelled dataset (``workbench.quality``); they are cheap enough to run
during training. The Inception metrics are the standard ones from papers and
appear only where torch-fidelity or pytorch-fid and their weights are on disk.
"""

from __future__ import annotations

from workbench import hookimpl
from workbench.quality import domain, inception
from workbench.quality.conditional import class_accuracy
from workbench.quality.context import MetricContext
from workbench.registry import MetricSpec


def _precision(ctx: MetricContext) -> float:
    return domain.manifold_precision_recall(ctx)[0]


def _recall(ctx: MetricContext) -> float:
    return domain.manifold_precision_recall(ctx)[1]


def _inception_features(ctx: MetricContext):
    """Inception pool3 features of the generated and the held-out real images, the latter kept per evaluator."""
    name, extract = ctx.memo("inception.extractor", lambda: inception.feature_extractor(ctx.device), keep=True)
    reference = ctx.reference()
    real = ctx.memo("inception.real", lambda: inception.inception_features(extract, reference.images), keep=True)
    fake = ctx.memo("inception.fake", lambda: inception.inception_features(extract, ctx.fake))
    ctx.memo("inception.note", lambda: ctx.notes.append(
        f"inception_fid/inception_kid: Inception-v3 pool3 features computed with {name}"), keep=True)
    return real, fake


def _inception_fid(ctx: MetricContext) -> float:
    from workbench.quality.frechet import frechet_between

    real, fake = _inception_features(ctx)
    return frechet_between(fake, real)


def _inception_kid(ctx: MetricContext) -> float:
    real, fake = _inception_features(ctx)
    return inception.kernel_inception_distance(real, fake)


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
    MetricSpec("inception_fid", "standard Inception-v3 FID (torch-fidelity or pytorch-fid, weights on disk)",
               _inception_fid, default=False, available=inception.unavailable_reason),
    MetricSpec("inception_kid", "standard Inception-v3 KID (torch-fidelity or pytorch-fid, weights on disk)",
               _inception_kid, default=False, available=inception.unavailable_reason),
)


@hookimpl
def ganbench_register_metrics(register):
    for spec in METRICS:
        register(spec)
