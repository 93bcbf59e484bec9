"""What ``--resume PATH`` continues: a run directory (its newest readable checkpoint) or a checkpoint file."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from workbench.base.errors import CheckpointError, ConfigError
from workbench.engine import checkpoint as ckpt
from workbench.engine.checkpoint_files import prune_step_checkpoints, replace_with_link
from workbench.rundir.config import RunConfig, check_run_name
from workbench.rundir.directory import RunDir, last_event
from workbench.rundir.events import EventLog


@dataclass
class ResumePoint:
    """Where a resumed run starts: a checkpoint (None: from step 0), its run directory, its configuration."""

    checkpoint: ckpt.Checkpoint | None
    run_dir: RunDir | None
    config: RunConfig | None
    warnings: list[str] = field(default_factory=list)


def open_resume(path: Path) -> ResumePoint:
    """Find what ``--resume PATH`` continues; raise CheckpointError (one sentence) when there is nothing usable.

    In a run directory the newest readable checkpoint wins (a damaged one falls back to the one before);
    a run killed before its first checkpoint starts over from step 0 with its ``config.json``.
    """
    if not path.is_dir():
        checkpoint = ckpt.load_checkpoint(path)
        folder = path.resolve().parent
        if folder.name == "checkpoints" and (folder.parent / "config.json").is_file():
            run_dir = RunDir(folder.parent)
            if path.name == run_dir.latest.name:  # name the step file it links to, the checkpoint it really is
                checkpoint.path = _step_file_of(run_dir, path) or checkpoint.path
            return ResumePoint(checkpoint, run_dir, _in_place(config_from_checkpoint(checkpoint), run_dir))
        return ResumePoint(checkpoint, None, config_from_checkpoint(checkpoint))
    if path.name == "checkpoints" and (path.parent / "config.json").is_file():
        path = path.parent
    run_dir = RunDir(path)
    if not run_dir.config.is_file():
        raise CheckpointError(f"{path} is not a run directory (it has no config.json) and holds no checkpoint.")
    candidates = _newest_first(run_dir)
    if not candidates:
        return ResumePoint(None, run_dir, config_from_file(run_dir.config, run_dir),
                           [f"{path} had no checkpoint yet; starting over from step 0."])
    errors = []
    for candidate in candidates:
        try:
            checkpoint = ckpt.load_checkpoint(candidate)
        except CheckpointError as exc:
            errors.append(str(exc))
            continue
        warnings = [f"Skipped an unusable checkpoint: {error}" for error in errors]
        return ResumePoint(checkpoint, run_dir, _in_place(config_from_checkpoint(checkpoint), run_dir), warnings)
    raise CheckpointError(f"No usable checkpoint in {path}: {errors[0]}")


def _newest_first(run_dir: RunDir) -> list[Path]:
    """The checkpoints to try: the step files, newest first, then ``latest`` where it is none of them.

    ``latest`` is a hard link to the newest step file (unless a kill came between writing one and
    linking), so the step file is what a resume names as the checkpoint it continues from.
    """
    candidates = run_dir.step_checkpoints()[::-1]
    if run_dir.latest.is_file() and _step_file_of(run_dir, run_dir.latest) is None:
        candidates.append(run_dir.latest)
    return candidates


def _step_file_of(run_dir: RunDir, path: Path) -> Path | None:
    """The step file that ``path`` (``latest``) is a link to, if any."""
    for step_file in run_dir.step_checkpoints()[::-1]:
        with contextlib.suppress(OSError):
            if os.path.samefile(path, step_file):
                return step_file
    return None


def reconcile(run_dir: RunDir, checkpoint: ckpt.Checkpoint, keep: int) -> list[str]:
    """Make a run's files agree with the checkpoint it resumes from; return what was repaired, as sentences.

    A kill between a checkpoint's rename and its record leaves a step file that ``events.jsonl`` and
    ``state.json`` do not know, ``latest`` pointing at the one before, or one step file too many. Call it
    with the run locked, before the resumed run starts.
    """
    repaired = []
    if checkpoint.path.parent == run_dir.checkpoints and checkpoint.path.name.startswith("step-"):
        if not (run_dir.latest.is_file() and os.path.samefile(run_dir.latest, checkpoint.path)):
            replace_with_link(checkpoint.path, run_dir.latest)
        prune_step_checkpoints(run_dir, keep, spare=checkpoint.path)
    recorded = last_event(run_dir, "checkpoint")
    if recorded is None or recorded.get("step", -1) < checkpoint.step:
        log = EventLog(run_dir.events)
        try:
            log.write("checkpoint", step=checkpoint.step, epoch=int(checkpoint.meta.get("epoch", 0)),
                      path=str(checkpoint.path), file=_relative(run_dir, checkpoint.path), reconciled=True)
        finally:
            log.close()
        repaired.append(f"The checkpoint of step {checkpoint.step} ({checkpoint.path.name}) had been written but "
                        f"not recorded (the process ended in between); it is recorded now.")
    if run_dir.read_state().get("checkpoint_step") != checkpoint.step:
        run_dir.write_state(step=checkpoint.step, checkpoint_step=checkpoint.step)
    return repaired


def _relative(run_dir: RunDir, path: Path) -> str:
    try:
        return run_dir.relative(path)
    except ValueError:
        return str(path)


def check_steps_left(checkpoint: ckpt.Checkpoint, total_steps: int, run_dir: RunDir | None) -> None:
    """Raise one sentence if the checkpoint already reached ``total_steps``."""
    if checkpoint.step >= total_steps:
        where = f"The run in {run_dir.path}" if run_dir is not None else str(checkpoint.path)
        raise ConfigError(f"{where} already has {checkpoint.step} of {total_steps} steps; "
                          f"pass a larger --steps or --epochs to train further.")


def check_image_shape(checkpoint: ckpt.Checkpoint, image_shape: tuple[int, int, int]) -> None:
    """Raise one sentence if the checkpoint was trained on images of another shape than the dataset gives now."""
    if tuple(checkpoint.meta["image_shape"]) != image_shape:
        raise CheckpointError(f"{checkpoint.path} holds images of shape {tuple(checkpoint.meta['image_shape'])}, "
                              f"but the dataset now gives {image_shape}.")


def config_from_checkpoint(checkpoint: ckpt.Checkpoint) -> RunConfig:
    """The run configuration stored in a checkpoint's metadata."""
    try:
        return RunConfig.from_dict(dict(checkpoint.meta["config"]))
    except (TypeError, ValueError):
        raise CheckpointError(f"The metadata of {checkpoint.path} does not hold a run configuration.") from None


def config_from_file(path: Path, run_dir: RunDir | None = None) -> RunConfig:
    """A run configuration from a ``config.json`` (kept in place in ``run_dir`` when given)."""
    try:
        config = RunConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError):
        raise CheckpointError(f"{path} cannot be read as a run configuration.") from None
    return _in_place(config, run_dir) if run_dir is not None else config


def _in_place(config: RunConfig, run_dir: RunDir) -> RunConfig:
    """The run keeps living where it is now, even if its folder was moved or renamed."""
    config.runs_dir = str(run_dir.path.parent)
    with contextlib.suppress(ConfigError):  # a folder renamed to something no new run could be called
        config.name = check_run_name(run_dir.path.name)
    return config


def restore_position(run, checkpoint: ckpt.Checkpoint) -> None:
    """Continue ``run`` from a checkpoint whose weights and optimizer moments are already loaded: the step, the
    position in the data, the fixed noise and the random generators."""
    meta, tensors = checkpoint.meta, checkpoint.tensors
    run.step, run.epoch, run.batch = int(meta["step"]), int(meta.get("epoch", 0)), int(meta.get("batch", 0))
    # a checkpoint from before images were counted: every step took a whole batch of the job
    run.images_seen = int(meta.get("images_seen", run.step * run.data.global_batch_size))
    try:
        fixed = tensors.get("fixed_noise")
        if fixed is not None and fixed.dim() == 2 and fixed.shape[1] == run.model.latent_dim:
            run.fixed_noise = fixed.float().to(run.device)
        for name, images in run.fixed_inputs.items():  # a translator's grid inputs, as the run began with them
            stored = tensors.get(f"fixed/{name}")
            if stored is not None and stored.shape == images.shape:
                run.fixed_inputs[name] = stored.to(run.device, images.dtype)
        if meta.get("device") == run.device.type:  # generator states are device-specific
            run.noise.set_state(tensors["rng/noise"])
            torch.set_rng_state(tensors["rng/torch"])
            if "rng/cuda" in tensors:
                torch.cuda.set_rng_state(tensors["rng/cuda"], run.device)
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{checkpoint.path} holds unusable random-generator state ({exc}).") from None
    run.resumed_from = str(checkpoint.path)
    run.last_checkpoint_step = run.step
