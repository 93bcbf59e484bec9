"""Mode coverage: how the classifier sorts generated samples into the dataset's classes.

A GAN that collapsed onto a few modes draws most samples from a few classes.
A class counts as covered when it receives at least ``COVERED_SHARE`` (half)
of the share the classifier gives it among the real held-out images. Half,
because a classifier confuses similar classes and a lower bar counts classes
that are merely confused with generated ones: real images of only T-shirts,
trousers and pullovers cover six Fashion-MNIST classes at a tenth of their
share, four at half (Shirt, which the classifier confuses with T-shirt, is
still counted). The KL divergence ``KL(p_generated || p_real)`` of the two
predicted class histograms is 0 for a perfect match and ``log(10) = 2.30``
for a generator stuck on one of ten balanced classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

COVERED_SHARE = 0.5


@dataclass
class Coverage:
    """The predicted class histograms of generated and real images, and what follows from them."""

    fake_share: torch.Tensor
    real_share: torch.Tensor
    classes: tuple[str, ...]

    @property
    def covered(self) -> torch.Tensor:
        """A bool per class: covered or not."""
        return self.fake_share >= COVERED_SHARE * self.real_share

    @property
    def classes_covered(self) -> int:
        return int(self.covered.sum())

    @property
    def kl(self) -> float:
        """KL(p_generated || p_real); classes absent from the generated samples add nothing."""
        p, q = self.fake_share.double(), self.real_share.double().clamp(min=1e-12)
        terms = torch.where(p > 0, p * (p / q).log(), torch.zeros_like(p))
        return float(terms.sum())

    def notes(self) -> list[str]:
        """Sentences for people: missing classes, and a mode-collapse flag when half or more are missing."""
        total = len(self.classes)
        if self.classes_covered == total:
            return []
        missing = [name for name, ok in zip(self.classes, self.covered.tolist()) if not ok]
        top = int(self.fake_share.argmax())
        text = (f"{self.classes_covered} of {total} classes covered (missing: {', '.join(missing)}); "
                f'{float(self.fake_share[top]):.0%} of the samples look like "{self.classes[top]}"')
        if self.classes_covered <= total // 2:
            return [f"MODE COLLAPSE: {text}"]
        return [text]


def class_shares(logits: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The share of samples the classifier puts in each class (argmax), summing to 1."""
    counts = torch.bincount(logits.argmax(1), minlength=num_classes).double()
    return counts / counts.sum()


def coverage(fake_logits: torch.Tensor, real_logits: torch.Tensor, classes: tuple[str, ...]) -> Coverage:
    """Compare the predicted class histograms of generated and real images."""
    return Coverage(class_shares(fake_logits, len(classes)), class_shares(real_logits, len(classes)), classes)
