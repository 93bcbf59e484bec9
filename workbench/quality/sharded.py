"""Evaluation during a torchrun job: the ranks share generation and Inception features; rank 0 computes the metrics.

The fixed noise is cut into the chunks ``generate`` uses in one process (BatchNorm layers normalise each
chunk with its own statistics, so the same chunks give the same images) and rank r takes chunks r,
r + world, ... Each rank quantises its images and, when ``fid`` or ``kid`` is asked for, extracts their
Inception features, the expensive part. One ``all_gather_object`` brings every share to every rank (NVlabs
gathers its features with one broadcast per rank); rank 0 puts them back in order and evaluates. What went
wrong on any rank travels in the same collective, so every rank turns evaluation off at the same step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from workbench.engine.samples import generate
from workbench.quality.evaluate import to_uint8

CHUNK = 2048  # generate()'s own batch in one process


@dataclass
class Share:
    """What one rank brings: its chunks' images (uint8, CPU), their features, or why it has none."""

    rank: int
    chunks: list[int] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)
    features: list[torch.Tensor] | None = None
    error: str | None = None  # this rank failed now
    off: bool = False  # this rank had turned evaluation off earlier (rank 0, after a failed evaluation)


def chunks_of(count: int, rank: int, world: int) -> list[slice]:
    """The slices of ``count`` samples that ``rank`` generates: every ``world``-th chunk of ``CHUNK``."""
    starts = range(0, count, CHUNK)
    return [slice(start, min(start + CHUNK, count)) for start in list(starts)[rank::world]]


def make_share(model, noise: torch.Tensor, labels: torch.Tensor | None, rank: int, world: int, device,
               detector=None) -> Share:
    """Generate (and, given the detector, embed) this rank's chunks of the fixed noise."""
    share = Share(rank, features=[] if detector is not None else None)
    for part in chunks_of(noise.shape[0], rank, world):
        images = to_uint8(generate(model, noise[part].to(device), None if labels is None else labels[part])).cpu()
        share.chunks.append(part.start // CHUNK)
        share.images.append(images)
        if detector is not None:
            share.features.append(detector.features(images))
    return share


def gather(share: Share) -> list[Share]:
    """Every rank's share, on every rank: the evaluation's one collective."""
    import torch.distributed as dist

    shares: list[Share | None] = [None] * dist.get_world_size()
    dist.all_gather_object(shares, share)
    return shares


def assemble(shares: list[Share]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The images in the order one process draws them, and their features when every rank extracted them."""
    order = sorted((chunk, index, share) for share in shares for index, chunk in enumerate(share.chunks))
    images = torch.cat([share.images[index] for _, index, share in order])
    if any(share.features is None for share in shares):
        return images, None
    return images, torch.cat([share.features[index] for _, index, share in order])
