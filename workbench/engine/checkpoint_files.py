"""A run's checkpoint files: ``step-N.safetensors``, ``latest`` pointing at the newest, the oldest pruned."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import torch

from workbench.base.atomic import atomic_write
from workbench.engine import checkpoint as ckpt
from workbench.rundir.directory import RunDir


def write_step_checkpoint(run_dir: RunDir, step: int, model, meta: dict[str, Any],
                          extra: dict[str, torch.Tensor], keep: int) -> Path:
    """Write ``step-N.safetensors`` atomically, point ``latest`` at it and drop the oldest beyond ``keep``.

    Raises OSError when the disk refuses; the earlier checkpoints stay intact.
    """
    path = run_dir.checkpoints / f"step-{step:08d}.safetensors"
    prune_step_checkpoints(run_dir, max(keep - 1, 1))  # room first: never more than ``keep`` files, even after a kill
    ckpt.save_checkpoint(path, model, meta, extra)
    _fault_point("after_checkpoint_rename", step)
    replace_with_link(path, run_dir.latest)
    prune_step_checkpoints(run_dir, keep)
    return path


def prune_step_checkpoints(run_dir: RunDir, keep: int, spare: Path | None = None) -> None:
    """Delete the oldest step files beyond the newest ``keep`` (never ``spare``, the one a run resumed from)."""
    for old in run_dir.step_checkpoints()[:-keep]:
        if old != spare:
            with contextlib.suppress(OSError):
                old.unlink()


def _fault_point(name: str, step: int) -> None:
    """For tests only: ``GANBENCH_FAULT=<name>`` (or ``<name>@<step>``) kills the process here, as a kill -9
    at this instant would."""
    if os.environ.get("GANBENCH_FAULT") in (name, f"{name}@{step}"):
        os.kill(os.getpid(), signal.SIGKILL)


def replace_with_link(source: Path, target: Path) -> None:
    """Point ``target`` at ``source``'s content atomically (a hard link, or a copy where links fail)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a file system without hard links: a copy, written like any other file
        with atomic_write(target) as copy:
            shutil.copyfile(source, copy)
        return
    os.replace(tmp, target)
