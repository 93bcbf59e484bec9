"""What ``--resume PATH`` continues: a run directory (its newest readable checkpoint) or a checkpoint file."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config import RunConfig, check_run_name
from workbench.engine import checkpoint as ckpt
from workbench.engine.rundir import RunDir
from workbench.errors import CheckpointError, ConfigError


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
    """The checkpoints to try: ``latest`` first where it is the newest step file, else the step files first."""
    candidates = run_dir.step_checkpoints()[::-1]
    if run_dir.latest.is_file():
        # latest is a hard link to the newest step file, unless a kill came between writing one and linking
        newest = bool(candidates) and os.path.samefile(run_dir.latest, candidates[0])
        candidates.insert(0 if newest or not candidates else len(candidates), run_dir.latest)
    return candidates


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
