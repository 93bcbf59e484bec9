"""Improved precision and recall (Kynkäänniemi et al. 2019) with k-nearest-neighbour manifolds.

Each set of features defines a manifold: the union of balls around its points,
each ball as wide as the distance to the point's k-th nearest neighbour.
Precision is the share of generated samples inside the real manifold (are the
samples realistic?); recall is the share of real samples inside the generated
manifold (is the variety there?). The paper uses k = 3 and equal sample counts.
"""

from __future__ import annotations

import torch

K = 3
_CHUNK = 1024


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b, compute_mode="use_mm_for_euclid_dist").clamp_(min=0)


def knn_radii(points: torch.Tensor, k: int = K) -> torch.Tensor:
    """The distance from each point (N, D) to its k-th nearest other point."""
    if points.shape[0] <= k:
        raise ValueError(f"k-NN radii need more than {k} points")
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    for start in range(0, points.shape[0], _CHUNK):
        block = _distances(points[start:start + _CHUNK], points)
        radii[start:start + _CHUNK] = block.kthvalue(k + 1, dim=1).values  # the first is the point itself
    return radii


def inside_manifold(queries: torch.Tensor, points: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For each query (Q, D): does it lie within the ball of some point (N, D) of radius ``radii``?"""
    inside = torch.empty(queries.shape[0], dtype=torch.bool, device=queries.device)
    for start in range(0, queries.shape[0], _CHUNK):
        block = _distances(queries[start:start + _CHUNK], points)
        inside[start:start + _CHUNK] = (block <= radii.unsqueeze(0)).any(dim=1)
    return inside


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K) -> tuple[float, float]:
    """(precision, recall) of the ``fake`` features against the ``real`` ones, both (N, D)."""
    real, fake = real.float(), fake.float()
    precision = inside_manifold(fake, real, knn_radii(real, k)).float().mean()
    recall = inside_manifold(real, fake, knn_radii(fake, k)).float().mean()
    return float(precision), float(recall)
