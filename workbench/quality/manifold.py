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


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # |a|² + |b|² - 2ab in one matrix product: squared distances order and compare like distances
    return torch.addmm(b.square().sum(1).unsqueeze(0), a, b.T, alpha=-2).add_(a.square().sum(1, keepdim=True)) \
        .clamp_(min=0)


def knn_radii(points: torch.Tensor, k: int = K) -> torch.Tensor:
    """The distance from each point (N, D) to its k-th nearest other point."""
    if points.shape[0] <= k:
        raise ValueError(f"k-NN radii need more than {k} points")
    radii = torch.empty(points.shape[0], dtype=points.dtype, device=points.device)
    for start in range(0, points.shape[0], _CHUNK):
        block = _squared_distances(points[start:start + _CHUNK], points)
        # the k+1 smallest, the first being the point itself (topk is far faster than kthvalue on CPU)
        radii[start:start + _CHUNK] = block.topk(k + 1, dim=1, largest=False).values[:, -1]
    return radii.sqrt_()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """(precision, recall) of the ``fake`` features against the ``real`` ones, both (N, D).

    One pass over the real-to-fake distances answers both questions.

    :param real_radii: ``knn_radii(real, k)`` when already known (the real side does not change during a run).
    """
    real, fake = real.float(), fake.float()
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    real_reach, fake_reach = real_radii.square(), knn_radii(fake, k).square()
    fake_inside = torch.zeros(fake.shape[0], dtype=torch.bool, device=fake.device)
    real_inside = torch.empty(real.shape[0], dtype=torch.bool, device=real.device)
    for start in range(0, real.shape[0], _CHUNK):
        block = _squared_distances(real[start:start + _CHUNK], fake)
        real_inside[start:start + _CHUNK] = (block <= fake_reach.unsqueeze(0)).any(dim=1)
        fake_inside |= (block <= real_reach[start:start + _CHUNK].unsqueeze(1)).any(dim=0)
    return float(fake_inside.float().mean()), float(real_inside.float().mean())
