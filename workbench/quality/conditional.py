"""Quality of a conditional model: does it draw the class it is asked for?

``class_accuracy`` is the share of samples the domain classifier (the one
behind ``fd`` and ``classes_covered``) puts in the class they were drawn for.
The classifier's own accuracy on the held-out real images is its ceiling (about
0.9 on Fashion-MNIST, whose shirts and T-shirts it confuses); 1 / classes is
chance, what a generator that ignores its labels scores.
"""

from __future__ import annotations

from workbench.base.errors import GanbenchError
from workbench.quality.context import MetricContext
from workbench.quality.domain import fake_embedding


def class_accuracy(ctx: MetricContext) -> float:
    """The share of generated images the domain classifier assigns to the class they were drawn for."""
    if ctx.labels is None:
        raise GanbenchError("class_accuracy needs samples drawn for given classes: a conditional model.")
    classes = ctx.reference().classes
    drawn_for = int(ctx.labels.max()) + 1
    if drawn_for > len(classes):
        raise GanbenchError(f"The samples were drawn for {drawn_for} classes, but the dataset's classifier knows "
                            f"{len(classes)}.")
    logits = fake_embedding(ctx)[1]
    return float((logits.argmax(1).cpu() == ctx.labels).float().mean())
