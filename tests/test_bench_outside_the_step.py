"""What a whole run does besides its training steps is bounded, counted rather than timed.

A default ``ganbench run`` writes metrics, sample grids, checkpoints and events
between steps. These tests count what the loop does outside ``train_step``:
torch operators on the training thread per step, per log and per grid; modules
imported once training is under way (an import in the middle of training costs
seconds: dynamo through ``set_stance``, torchvision through ``save_image``);
torch operators and fsyncs on the grid-writing thread and the training thread.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode

from workbench.engine import samples
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config

pytestmark = pytest.mark.usefixtures("one_thread")


class CountOps(TorchDispatchMode):
    """Counts the torch operators this thread dispatches while ``counting()`` says so."""

    def __init__(self, counting=lambda: True):
        super().__init__()
        self.counting, self.ops = counting, Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.counting():
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def _counted_run(plugins, tmp_path, steps: int, sample_every: int, log_every: int) -> dict:
    config = build_config(plugins.registry, "mlp_gan", sets=[
        "batch_size=16", "sample_count=16", f"sample_every={sample_every}", f"log_every={log_every}",
        "log_seconds=1e9", f"checkpoint_every={steps + 1}"], steps=steps, device="cpu", runs_dir=str(tmp_path))
    run = prepare_run(config, plugins)
    seen = {"inside": False, "calls": 0, "fsyncs": 0, "writer_ops": Counter()}
    train_step, write = run.model.train_step, samples._write_when_ready
    training_thread = threading.get_ident()

    def step(real, loss):
        seen["calls"] += 1
        if seen["calls"] == 2:  # the first step is behind us: everything training needs is loaded
            seen["modules"] = set(sys.modules)
        if seen["calls"] == steps:
            seen["imported"] = set(sys.modules) - seen["modules"]
            seen["loop_fsyncs"] = seen["fsyncs"]
        seen["inside"] = True
        try:
            return train_step(real, loss)
        finally:
            seen["inside"] = False

    def write_counted(*args):
        with CountOps() as mode:
            write(*args)
        seen["writer_ops"].update(mode.ops)

    def fsync(fd, real_fsync=os.fsync):
        if threading.get_ident() == training_thread and seen["calls"] >= 2:
            seen["fsyncs"] += 1
        return real_fsync(fd)

    run.model.train_step = step
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(samples, "_write_when_ready", write_counted)
        patch.setattr(os, "fsync", fsync)
        with CountOps(lambda: not seen["inside"]) as mode:
            assert run.train() == "completed"
    seen["outside_ops"] = sum(mode.ops.values())
    return seen


def test_the_work_outside_the_step_is_bounded_per_step_log_and_grid(plugins, tmp_path):
    short = _counted_run(plugins, tmp_path / "a", steps=30, sample_every=15, log_every=15)
    long = _counted_run(plugins, tmp_path / "b", steps=60, sample_every=30, log_every=30)
    more_logs = _counted_run(plugins, tmp_path / "c", steps=60, sample_every=30, log_every=10)
    more_grids = _counted_run(plugins, tmp_path / "d", steps=60, sample_every=10, log_every=10)
    # The same number of logs and grids: the difference is 30 steps' worth of the loop's own operators
    # (taking the batch, adding its losses to the window: 8 operators today).
    per_step = (long["outside_ops"] - short["outside_ops"]) / 30
    assert per_step <= 10, f"{per_step:.1f} torch operators per step outside train_step"
    # A log reads the window and checks every weight is finite (about 5 operators per tensor: 123 today);
    # it comes every log_every steps or log_seconds (1 s by default).
    per_log = (more_logs["outside_ops"] - long["outside_ops"]) / 4  # 6 logs instead of 2
    assert per_log <= 150, f"{per_log:.0f} torch operators per log"
    per_grid = (more_grids["outside_ops"] - more_logs["outside_ops"]) / 4  # 6 grids instead of 2
    assert per_grid <= 150, f"{per_grid:.0f} torch operators per sample grid"
    for seen in (short, long, more_logs, more_grids):
        assert seen["imported"] == set(), "modules imported in the middle of training"
        assert seen["loop_fsyncs"] == 0, "the training thread waited for the disk between steps"
        assert sum(seen["writer_ops"].values()) == 0, f"the grid writer ran torch operators: {seen['writer_ops']}"
    assert len(list((tmp_path / "d").glob("*/samples/*.png"))) == 6


@pytest.mark.parametrize("shape, nrow", [((64, 1, 28, 28), None), ((10, 1, 5, 7), 3), ((7, 3, 8, 8), None),
                                         ((5, 3, 6, 6), 8), ((1, 1, 4, 4), None)])
def test_grids_have_the_pixels_of_torchvisions_save_image(shape, nrow, tmp_path):
    from torchvision.utils import save_image

    torch.manual_seed(0)
    images = torch.randn(*shape) * 1.3  # beyond [-1, 1] too: clamped alike
    samples.save_grid(images, tmp_path / "ours.png", nrow)
    save_image(images, str(tmp_path / "theirs.png"), nrow=nrow or max(1, int(math.sqrt(shape[0]))),
               normalize=True, value_range=(-1, 1), padding=2)
    ours, theirs = (np.asarray(Image.open(tmp_path / name)) for name in ("ours.png", "theirs.png"))
    assert ours.shape == theirs.shape and (ours == theirs).all()


def test_a_whole_run_imports_neither_dynamo_nor_torchvision(cli, tmp_path):
    """Importing torch._dynamo costs 1.5 s of CPU before the first step and as much at exit on a 2-core CPU;
    torchvision another second. A run that compiles nothing needs neither, grids and checkpoints included."""
    result = cli("run", "--plugin", "mlp_gan", "--steps", "4", "--set", "batch_size=16", "--set", "sample_every=2",
                 "--set", "checkpoint_every=2", "--runs-dir", str(tmp_path / "runs"),
                 env={"PYTHONPROFILEIMPORTTIME": "1", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time")}
    assert "torch" in imported and "safetensors" in imported  # the import log is complete
    assert not {name for name in imported if name.startswith(("torch._dynamo", "torchvision"))}
    (run,) = (tmp_path / "runs").iterdir()
    assert len(list((run / "samples").glob("*.png"))) == 2 and list((run / "checkpoints").glob("step-*"))
