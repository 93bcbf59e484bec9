"""Drawing images from a generator and writing sample grids."""

from __future__ import annotations

import contextlib
import math
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from workbench.base.atomic import atomic_write


def _eager_code():
    """Networks compiled with ``compile=on`` run their eager code inside: a sample batch (no gradients, its
    own size) would otherwise make dynamo compile G once more, seconds in the middle of training.

    Nothing can be compiled unless dynamo was imported, and importing it costs seconds (``set_stance``
    would import it): without it, there is nothing to switch off.
    """
    set_stance = getattr(torch.compiler, "set_stance", None)  # PyTorch 2.6 and later
    if set_stance is None or "torch._dynamo" not in sys.modules:
        return contextlib.nullcontext()
    return set_stance("force_eager")


@torch.no_grad()
def generate(model, z: torch.Tensor, labels: torch.Tensor | None = None, batch_size: int = 2048,
             **inputs) -> torch.Tensor:
    """Images in [-1, 1] from noise ``z`` (and, for a conditional model, class ``labels``), leaving the model's
    weights and statistics untouched.

    BatchNorm layers normalise with the sample batch's own statistics, as the
    reference scripts' progress grids do, but their running statistics are not
    updated, so drawing samples never changes the model (nor its compiled graphs).
    A conditional model given no labels draws each class in turn. ``z`` goes through
    in chunks of ``batch_size``: large ones, because on a CPU every layer call pays a
    thread hand-over whatever its size (on this shared 2-core CPU, 10,000 samples of
    a DCGAN took 3 times the CPU time in chunks of 256 as in one).

    ``inputs``: the keywords of a translator's ``generate`` (``source=images``, chunked with ``z``; others such
    as ``inverse=True`` passed as they are).
    """
    if labels is None and "labels" in getattr(model, "batch_fields", ()):
        labels = torch.arange(z.shape[0], device=z.device) % model.n_classes
    norms = [m for net in model.networks.values() for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None) for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        with _eager_code():
            if inputs:
                chunks = {k: v.split(batch_size) if isinstance(v, torch.Tensor) else None for k, v in inputs.items()}
                images = [model.generate(chunk, **{k: (inputs[k] if parts is None else parts[i])
                                                   for k, parts in chunks.items()})
                          for i, chunk in enumerate(z.split(batch_size))]
            elif labels is None:
                images = [model.generate(chunk) for chunk in z.split(batch_size)]
            else:
                images = [model.generate(chunk, part) for chunk, part in zip(z.split(batch_size), labels.split(batch_size))]
            return torch.cat(images).float().clamp_(-1, 1)
    finally:
        for m, (momentum, tracked) in zip(norms, saved):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)


def grid_pixels(images: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) laid out as one (height, width, 3) uint8 grid, on their own device.

    The layout and rounding of torchvision's ``save_image(normalize=True, value_range=(-1, 1))``: ``nrow``
    images a row (default: about the square root of N), black ``padding`` between and around them (none
    around a single image), grey images repeated into three channels. A few vectorised operations, no
    Python per image.
    """
    return lay_out(to_pixels(images), nrow, padding)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) as uint8 RGB (N, 3, H, W), rounded as ``save_image`` rounds them."""
    x = images.detach().float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.clamp(-1, 1).sub(-1).div_(2).mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def lay_out(pixels: torch.Tensor, nrow: int | None = None, padding: int = 2) -> torch.Tensor:
    """uint8 images (N, 3, H, W) as one (height, width, 3) grid (see ``grid_pixels``)."""
    count, _, height, width = pixels.shape
    padding = padding if count > 1 else 0
    columns = min(nrow or max(1, int(math.sqrt(count))), count)
    rows = math.ceil(count / columns)
    cells = torch.zeros(rows * columns, pixels.shape[1], height + padding, width + padding, dtype=torch.uint8,
                        device=pixels.device)
    cells[:count, :, padding:, padding:] = pixels
    grid = cells.view(rows, columns, -1, height + padding, width + padding).permute(0, 3, 1, 4, 2)
    grid = grid.reshape(rows * (height + padding), columns * (width + padding), -1)
    return torch.nn.functional.pad(grid, (0, 0, 0, padding, 0, padding))


def write_png(pixels, path: Path) -> None:
    """Write a (height, width, 3) uint8 array or CPU tensor as a PNG, atomically; no torch operator runs."""
    from PIL import Image

    array = pixels.numpy() if isinstance(pixels, torch.Tensor) else pixels
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        Image.fromarray(array).save(tmp, format="png")


def save_grid(images: torch.Tensor, path: Path, nrow: int | None = None) -> None:
    """Write images in [-1, 1] as one PNG grid, atomically: ``nrow`` images per row (default: a square grid,
    ``int(sqrt(N))`` per row, filled row by row), 2 pixels of padding."""
    write_png(grid_pixels(images, nrow).cpu(), Path(path))


@dataclass
class PendingGrid:
    """A sample grid being written: where, for which step, and the write's outcome."""

    path: Path
    step: int
    epoch: int
    future: Future
    raw: bool = False  # the raw generator's grid beside an EMA grid of the same step


class GridWriter:
    """Writes sample grids on a background thread, so training does not wait for PNG encoding and fsync.

    The grid's pixels are laid out by the caller's thread (microseconds of tensor work on the training
    device): the writer thread runs no torch operator, so it never starts a second team of intra-op threads
    beside the training's on the same cores. On a GPU the pixels leave by an asynchronous copy into pinned
    memory, which the thread waits for, not the training loop. ``finished`` hands back the grids whose
    writes ended, in order.
    """

    def __init__(self):
        from PIL import Image

        Image.preinit()  # PIL's common formats imported now, not by the first grid in the middle of training
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ganbench-samples")
        self.pending: list[PendingGrid] = []

    def submit(self, images: torch.Tensor, path: Path, step: int, epoch: int, per_row: int | None = None,
               raw: bool = False) -> None:
        """Lay out ``images`` (``per_row`` a row; default: a square grid) and write them to ``path`` in the
        background."""
        pixels, ready = grid_pixels(images, per_row), None
        if pixels.device.type == "cuda":
            host = torch.empty(pixels.shape, dtype=pixels.dtype, pin_memory=True)
            host.copy_(pixels, non_blocking=True)
            ready = torch.cuda.Event()
            ready.record()
            pixels = host
        # A NumPy view made here (it shares the memory the copy fills): the thread touches no tensor.
        future = self._pool.submit(_write_when_ready, pixels.numpy(), ready, Path(path))
        self.pending.append(PendingGrid(path, step, epoch, future, raw))

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


def _write_when_ready(pixels, ready, path: Path) -> None:
    if ready is not None:
        ready.synchronize()
    write_png(pixels, path)
