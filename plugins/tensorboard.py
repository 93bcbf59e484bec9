"""TensorBoard event files for every run, so ``tensorboard --logdir runs`` shows ganbench runs.

An observer plugin: it registers nothing and listens to the run-lifecycle
hooks. Active only when the ``tensorboard`` package is installed
(``pip install 'ganbench[tensorboard]'``); otherwise each hook returns at once.
It writes ``<run dir>/tensorboard/events.out.tfevents.*``: every number of
each metrics event as a scalar under ``train/``, each sample grid as an image,
and the configuration as text. A resumed run purges the events an earlier
session wrote after the checkpoint's step, so the curves join without a fold.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench import hookimpl

FOLDER = "tensorboard"
_NOT_SCALARS = {"type", "time", "step", "epoch", "batch"}
_writers: dict[Path, Any] = {}  # one SummaryWriter per run directory being trained in this process


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or None when the tensorboard package is not installed."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it; importing it first gives a clean None)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter


@hookimpl
def ganbench_run_start(run):
    writer_class = summary_writer_class()
    if writer_class is None:
        return
    # A resumed run rewrites the steps after its checkpoint: drop what an earlier session logged for them.
    purge = run.step + 1 if run.step else None
    writer = writer_class(log_dir=str(run.dir.path / FOLDER), purge_step=purge, flush_secs=10)
    config = json.dumps(run.config.to_dict(), indent=2)
    writer.add_text("config", "".join(f"    {line}\n" for line in config.splitlines()), run.step)
    _writers[run.dir.path] = writer


@hookimpl
def ganbench_metrics(run, metrics):
    writer = _writers.get(run.dir.path)
    if writer is None:
        return
    for key, value in metrics.items():
        if key in _NOT_SCALARS or isinstance(value, bool):
            continue
        try:
            number = float(value)  # the event log writes NaN and infinity as strings
        except (TypeError, ValueError):
            continue
        writer.add_scalar(f"train/{key}", number, metrics["step"], walltime=metrics.get("time"))


@hookimpl
def ganbench_sample_written(run, path, step):
    writer = _writers.get(run.dir.path)
    if writer is None:
        return
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    writer.add_image("samples", pixels, step, dataformats="HWC")


@hookimpl
def ganbench_run_end(run, reason):
    writer = _writers.pop(run.dir.path, None)
    if writer is not None:
        writer.add_text("end", f"{reason} at step {run.step}", run.step)
        writer.close()
