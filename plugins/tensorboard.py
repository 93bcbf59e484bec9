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

import contextlib
import json
import threading
from pathlib import Path
from typing import Any, Callable

from workbench.api import hookimpl

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


def _quiet_writer_threads() -> None:
    """Keep the writer thread's failure off the console: tensorboard stores the error and raises it again at
    the next ``add_*`` or ``close`` in the training thread, where the engine reports it as a plugin warning."""
    from tensorboard.summary.writer.event_file_writer import _AsyncWriterThread

    previous = threading.excepthook
    if getattr(previous, "ganbench_tensorboard", False):
        return

    def excepthook(args):
        if not isinstance(args.thread, _AsyncWriterThread):
            previous(args)

    excepthook.ganbench_tensorboard = True
    threading.excepthook = excepthook


def _write(run, action: Callable[[Any], None]) -> None:
    """``action(writer)`` with the run's writer, if it has one; the first error drops the writer for good."""
    writer = _writers.get(run.dir.path)
    if writer is None:
        return
    try:
        action(writer)
    except Exception:
        _writers.pop(run.dir.path, None)
        with contextlib.suppress(Exception):
            writer.close()
        raise


@hookimpl
def ganbench_run_start(run):
    writer_class = summary_writer_class()
    if writer_class is None:
        return
    _quiet_writer_threads()
    # A resumed run rewrites the steps after its checkpoint: drop what an earlier session logged for them.
    purge = run.step + 1 if run.step else None
    writer = writer_class(log_dir=str(run.dir.path / FOLDER), purge_step=purge, flush_secs=10)
    _writers[run.dir.path] = writer
    config = json.dumps(run.config.to_dict(), indent=2)
    _write(run, lambda w: w.add_text("config", "".join(f"    {line}\n" for line in config.splitlines()), run.step))


@hookimpl
def ganbench_metrics(run, metrics):
    scalars = {}
    for key, value in metrics.items():
        if key in _NOT_SCALARS or isinstance(value, bool):
            continue
        with contextlib.suppress(TypeError, ValueError):
            scalars[key] = float(value)  # the event log writes NaN and infinity as strings

    def add(writer):
        for key, number in scalars.items():
            writer.add_scalar(f"train/{key}", number, metrics["step"], walltime=metrics.get("time"))

    _write(run, add)


@hookimpl
def ganbench_sample_written(run, path, step):
    if run.dir.path not in _writers:
        return
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    _write(run, lambda writer: writer.add_image("samples", pixels, step, dataformats="HWC"))


@hookimpl
def ganbench_run_end(run, reason):
    def close(writer):
        writer.add_text("end", f"{reason} at step {run.step}", run.step)
        writer.close()

    _write(run, close)
    _writers.pop(run.dir.path, None)
