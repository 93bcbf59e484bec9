"""The Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017).

``d² = |mu1 - mu2|² + tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½)``, computed in float64
with symmetric eigendecompositions, so no SciPy is needed and a singular
covariance (a collapsed generator) is handled without complex numbers.
"""

from __future__ import annotations

import torch


def feature_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    x = features.double()
    if x.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least two samples")
    mu = x.mean(0)
    centred = x - mu
    return mu, centred.T @ centred / (x.shape[0] - 1)


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    """The squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as FID reports it."""
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    return max(float(value), 0.0)


def frechet_between(a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between the Gaussians fitted to feature sets ``a`` and ``b``."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))
