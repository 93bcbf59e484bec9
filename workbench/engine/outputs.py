"""What a run writes while it trains: checkpoints and sample grids, each told in the event log.

``RunOutputs`` is the part of ``Run`` (workbench.engine.training) that makes files; the loop decides when.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from workbench.base.errors import DiskError
from workbench.engine.checkpoint_files import write_step_checkpoint
from workbench.engine.conditioning import draw_grid
from workbench.engine.distributed import batch_norm_on_this_rank
from workbench.engine.state import averaged_weights
from workbench.engine.translation import FIXED_PREFIX, draw_translation_grid


class RunOutputs:
    """Checkpoints and grids of a ``Run`` (its attributes: ``dir``, ``model``, ``step``, ``grids`` ...)."""

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"model": self.config.model, "model_version": self.spec.version, "dataset": self.config.dataset,
                "loss": self.config.loss, "hyperparams": self.config.hyperparams, "image_shape": list(self.image_shape),
                "latent_dim": self.model.latent_dim, "classes": list(self.classes), "step": self.step,
                "images_seen": self.images_seen,
                "epoch": self.epoch, "batch": self.batch,
                "device": self.device.type, "config": self.config.to_dict(), "time": round(time.time(), 3)}

    def save_checkpoint(self) -> Path:
        """Write the checkpoint of this step (see ``write_step_checkpoint``) and say so in the log.

        Raises DiskError (one sentence) when the disk refuses; the earlier checkpoints stay intact.
        """
        extra = {"rng/noise": self.noise.get_state(), "rng/torch": torch.get_rng_state(), "fixed_noise": self.fixed_noise}
        extra.update({FIXED_PREFIX + name: images for name, images in self.fixed_inputs.items()})  # a translator's
        if self.device.type == "cuda":
            extra["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        try:
            path = write_step_checkpoint(self.dir, self.step, self.model, self.checkpoint_meta(), extra,
                                         self.config.engine["keep_checkpoints"])
        except OSError as exc:
            raise DiskError(f"Could not write the checkpoint of step {self.step} to {self.dir.checkpoints}: "
                            f"{exc.strerror or exc}; {self.checkpoint_note()}.") from None
        self.last_checkpoint_step = self.step
        self.dir.write_state(step=self.step, checkpoint_step=self.step)  # what a crash from here on leaves
        self.emit("checkpoint", step=self.step, epoch=self.epoch, path=str(path), file=self.dir.relative(path))
        self.notify("ganbench_checkpoint_written", path=path, step=self.step)
        return path

    def save_samples(self) -> None:
        """Start writing the fixed-noise grid of this step in the background; ``collect_samples`` reports it."""
        path = self.dir.samples / f"step-{self.step:08d}.png"
        with batch_norm_on_this_rank(self.model):  # rank 0 alone draws the grid: no SyncBatchNorm collective
            with averaged_weights(self.model) as averaged:  # the EMA generator's grid, when there is one
                images, per_row = self._draw_grid()
            raw = self._draw_grid()[0] if averaged else None
        if raw is not None:  # beside it, the raw generator's (written first: its EMA grid's event names it)
            self.grids.submit(raw, self.dir.samples / "raw" / path.name, self.step, self.epoch, per_row, raw=True)
        self.grids.submit(images, path, self.step, self.epoch, per_row)
        self.last_sample_step = self.step

    def _draw_grid(self) -> tuple[torch.Tensor, int | None]:
        if self.fixed_inputs:  # a translator translates its fixed held-out inputs
            return draw_translation_grid(self.model, self.fixed_inputs, self.config.engine["sample_count"])
        return draw_grid(self.model, self.fixed_noise)

    def collect_samples(self, wait: bool = False) -> None:
        """Emit the events of the grids written since the last call (waiting for all with ``wait``);
        raises DiskError (one sentence) for a grid the disk refused."""
        for grid in self.grids.finished(wait):
            exc = grid.future.exception()
            if isinstance(exc, OSError):
                raise DiskError(f"Could not write the sample grid {grid.path}: {exc.strerror or exc}; "
                                f"{self.checkpoint_note()}.")
            if exc is not None:
                raise exc
            if grid.raw:  # the raw generator's grid is told with its EMA grid
                self.raw_grids[grid.step] = grid.path
                continue
            raw = self.raw_grids.pop(grid.step, None)
            extra = {"raw_path": str(raw), "raw_file": self.dir.relative(raw)} if raw is not None else {}
            self.emit("sample", step=grid.step, epoch=grid.epoch, path=str(grid.path),
                      file=self.dir.relative(grid.path), **extra)
            self.notify("ganbench_sample_written", path=grid.path, step=grid.step)

    def checkpoint_note(self) -> str:
        """Where the user's work stands: 'the checkpoint of step N is intact', for the end-of-run sentences."""
        if self.last_checkpoint_step is None:
            return "no checkpoint had been written yet"
        return f"the checkpoint of step {self.last_checkpoint_step} is intact"

    # -- room for the record of the end ----------------------------------------
    END_RESERVE = 64 * 1024  # bytes kept free for run_end and state.json should the run fill the disk

    def hold_end_reserve(self) -> None:
        """Take a little disk space at the start, given back just before the end is recorded: a run that fills
        the disk with grids or checkpoints still writes how it ended (run_end, state.json)."""
        try:
            (self.dir.path / ".end-reserve").write_bytes(bytes(self.END_RESERVE))
        except OSError:
            pass  # a disk already this full: the end may go unrecorded, which the console then says

    def free_end_reserve(self) -> None:
        try:
            (self.dir.path / ".end-reserve").unlink(missing_ok=True)
        except OSError:
            pass

