"""Drawing images from a generator and writing sample grids."""

from __future__ import annotations

import contextlib
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from workbench.atomic import atomic_write


def _eager_code():
    """Networks compiled with ``compile=on`` run their eager code inside: a sample batch (no gradients, its
    own size) would otherwise make dynamo compile G once more, seconds in the middle of training."""
    set_stance = getattr(torch.compiler, "set_stance", None)  # PyTorch 2.6 and later
    return set_stance("force_eager") if set_stance is not None else contextlib.nullcontext()


@torch.no_grad()
def generate(model, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 256) -> torch.Tensor:
    """Images in [-1, 1] from noise ``z`` (and, for a conditional model, class ``labels``), leaving the model's
    weights and statistics untouched.

    BatchNorm layers normalise with the sample batch's own statistics, as the
    reference scripts' progress grids do, but their running statistics are not
    updated, so drawing samples never changes the model (nor its compiled graphs).
    A conditional model given no labels draws each class in turn.
    """
    if labels is None and "labels" in getattr(model, "batch_fields", ()):
        labels = torch.arange(z.shape[0], device=z.device) % model.n_classes
    norms = [m for net in model.networks.values() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        with _eager_code():
            if labels is None:
                images = [model.generate(chunk) for chunk in z.split(batch_size)]
            else:
                images = [model.generate(chunk, part) for chunk, part in zip(z.split(batch_size), labels.split(batch_size))]
            return torch.cat(images).float().clamp_(-1, 1)
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    """Write images in [-1, 1] as one PNG grid, atomically: ``nrow`` images per row (default: a square grid,
    ``int(sqrt(N))`` per row, filled row by row), 2 pixels of padding."""
    from torchvision.utils import save_image

    nrow = nrow or max(1, int(math.sqrt(images.shape[0])))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        save_image(images.cpu(), str(tmp), nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, format="png")


@dataclass
class PendingGrid:
    """A sample grid being written: where, for which step, and the write's outcome."""

    path: Path
    step: int
    epoch: int
    future: Future


class GridWriter:
    """Writes sample grids on a background thread, so training does not wait for PNG encoding and fsync.

    The images leave the GPU by an asynchronous copy into pinned memory; the
    thread waits for that copy, not the training loop. ``finished`` hands back
    the grids whose writes ended, in order.
    """

    def __init__(self):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganbench-samples")
        self.pending: list[PendingGrid] = []

    def submit(self, images: torch.Tensor, path: Path, step: int, epoch: int, per_row: int | None = None) -> None:
        ready = None
        if images.device.type == "cuda":
            host = torch.empty(images.shape, dtype=images.dtype, pin_memory=True)
            host.copy_(images, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
            images = host
        future = self._pool.submit(_write_when_ready, images, ready, path, per_row)
        self.pending.append(PendingGrid(path, step, epoch, future))

    def finished(self, wait: bool = False) -> list[PendingGrid]:
        """The grids whose writes ended since the last call, in order (all of them, waiting, with ``wait``);
        a failed write's exception is in its ``future``."""
        done = []
        while self.pending and (wait or self.pending[0].future.done()):
            grid = self.pending.pop(0)
            grid.future.exception()  # waits for the write
            done.append(grid)
        return done

    def close(self) -> None:
        """Let the writes under way finish; refuse new ones."""
        self._pool.shutdown(wait=True)


def _write_when_ready(images: torch.Tensor, ready, path: Path, per_row: int | None = None) -> None:
    if ready is not None:
        ready.synchronize()
    save_grid(images, path, per_row)
